import Hummingbird
import Pipeline

/// The one explicit list of what anyone may fetch without a token: the
/// pages (which ask for a token before they connect), their scripts and
/// stylesheet, liveness and readiness. Every other route goes through
/// `ProtectedRoutes`; an upgrade to a path that is not a WebSocket route is
/// refused at the gate.
struct PublicRoutes {
    /// The public paths, as the router spells them (the access test walks this list).
    static let paths = ["/", "/stream", "/admin", "/assets/{name}", "/healthz", "/readyz"]

    let pages: WebPages
    let health: @Sendable () -> JSONValue
    let readiness: Readiness

    func add(to router: Router<RelayRequestContext>) {
        pages.add(to: router)
        router.get("/healthz") { _, _ in Response.json(health()) }
        router.get("/readyz") { _, _ in
            let (ready, body) = readiness.json()
            return Response.json(body, status: ready ? .ok : .serviceUnavailable)
        }
    }
}
