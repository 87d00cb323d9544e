/// What the access layer counts. A protocol of its own so `Access` does not
/// depend on the relay's core: the server hands it the relay's metrics
/// (`RelayMetrics` conforms in `FramepipeServer`), tests whatever they like.
package protocol AccessMetrics: Sendable {
    /// A limit refused a connection or message (`framepipe_limit_hits_total{limit}`).
    func limitHit(_ limit: String)
    /// A request that is not HTTP or not a WebSocket upgrade as it should be.
    func badRequest(_ reason: String)
    /// An upgrade refused for who is asking (token, origin, role).
    func upgradeRefused(_ reason: String)
    /// An audit line lost: its queue was full, or writing it failed.
    func auditLineDropped()
    func auditWriteFailed()
}
