/// What `framepipe serve` prints once it listens: where to point a browser
/// for the dashboard and the camera, the URLs devices and viewers connect
/// to, and whether a token is needed — the first things a newcomer and a
/// device integrator look for. The README shows it for the defaults (a
/// test keeps that copy true). The one-line "framepipe listening" log entry
/// carries the same URLs for log shippers.
struct StartupBanner {
    let configuration: RelayConfiguration
    let port: Int
    let pipeline: String

    var text: String {
        let http = configuration.usesTLS ? "https" : "http"
        let ws = configuration.usesTLS ? "wss" : "ws"
        // A wildcard address is not one a browser can open.
        let host = ["0.0.0.0", "::", "[::]"].contains(configuration.host) ? "<this machine>" : configuration.host
        let base = "\(host):\(port)"
        let auth: String
        if configuration.auth.isEnabled {
            auth = "on: every socket and API call needs a token (framepipe token --help)"
        } else if configuration.insecure {
            auth = "off (--insecure): anyone who can reach this address can watch and publish"
        } else {
            auth = "off: listening on this machine only"
        }
        return """
            framepipe is listening
              dashboard   \(http)://\(base)/
              camera      \(http)://\(base)/stream
              health      \(http)://\(base)/admin
              streamers   \(ws)://\(base)/ws/stream/{stream_id}
              viewers     \(ws)://\(base)/ws/viewer
              operators   \(http)://\(base)/healthz  \(http)://\(base)/metrics  \(http)://\(base)/api/streams
              pipeline    \(pipeline)
              auth        \(auth)
            """
    }
}
