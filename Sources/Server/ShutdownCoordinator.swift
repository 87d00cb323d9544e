import RelayCore
import Logging
import ServiceLifecycle

/// Runs the contract's shutdown before the HTTP server stops: on SIGTERM or
/// SIGINT every viewer gets `stream_ended` (reason `shutdown`) for each live
/// stream, streamers are closed with that reason, viewers' writers drain and
/// close, and only then does the server stop accepting and exit.
///
/// It sits after the server in the service group, and a group shuts down
/// in reverse order, so this runs first.
struct ShutdownCoordinator: Service {
    let hub: ViewerHub
    let logger: Logger
    var drainTimeout: Duration = .seconds(3)

    func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            return  // cancelled: nothing to coordinate
        }
        hub.beginShutdown()
        let deadline = ContinuousClock.now + drainTimeout
        while ContinuousClock.now < deadline {
            let counts = hub.connectionCounts
            if counts.streams == 0 && counts.viewers == 0 { break }
            try? await Task.sleep(for: .milliseconds(20))
        }
        let left = hub.connectionCounts
        logger.notice("connections closed", metadata: ["viewers_left": "\(left.viewers)", "streams_left": "\(left.streams)"])
    }
}
