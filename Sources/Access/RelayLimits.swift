/// Every limit that keeps one client from crowding out the rest, each with
/// a safe default; 0 turns a count or rate limit off. Each refusal or drop
/// they cause is counted in `framepipe_limit_hits_total{limit=...}`.
public struct RelayLimits: Sendable {
    /// Live streams at once; a new stream id beyond it is refused with 503.
    public var maxStreams = 256
    /// Connected viewers in all; beyond it an upgrade is refused with 503.
    public var maxViewers = 2000
    /// Viewers connected with one token (its `jti`); beyond it 429.
    public var maxViewersPerToken = 20
    /// TCP connections from one client address; beyond it the connection is closed at once.
    public var maxConnectionsPerAddress = 64
    /// WebSocket upgrades a second from one address (burst of twice that); beyond it 429.
    public var upgradesPerSecondPerAddress = 10.0
    /// Messages a second a streamer may send (burst of one second's worth); the rest are dropped unread by the pipeline.
    public var maxStreamMessagesPerSecond = 60.0
    /// Messages a second a viewer may send; the rest are ignored.
    public var maxViewerMessagesPerSecond = 20.0
    /// Control messages (pong, stream_started...) a viewer may leave unread before it is dropped.
    public var maxViewerBacklog = 512
    /// A connection must finish its request headers within this long.
    public var handshakeTimeout: Duration = .seconds(10)

    public init() {}

    /// No limits at all, for load tests on one machine.
    public static var unlimited: RelayLimits {
        var l = RelayLimits()
        l.maxStreams = 0
        l.maxViewers = 0
        l.maxViewersPerToken = 0
        l.maxConnectionsPerAddress = 0
        l.upgradesPerSecondPerAddress = 0
        l.maxStreamMessagesPerSecond = 0
        l.maxViewerMessagesPerSecond = 0
        l.maxViewerBacklog = 0
        return l
    }
}

extension Int {
    /// `self` as a limit: true when `count` is already at it (0 means no limit).
    package func isReached(by count: Int) -> Bool { self > 0 && count >= self }
}
