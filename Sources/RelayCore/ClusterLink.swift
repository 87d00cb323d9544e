import Pipeline

/// What the hub tells the rest of the cluster about this node's streams.
/// Every call returns at once (it queues a write to Redis, or counts what
/// could not be sent while Redis is away) and is made outside the hub's lock.
package protocol ClusterLink: Sendable {
    /// A streamer connected here; a node serving the same id must let go.
    func localStreamConnected(_ id: String, started: Bool)
    /// Its first valid frame arrived: viewers everywhere hear `stream_started`.
    func localStreamStarted(_ id: String)
    /// It ended here (not for `replaced`: the new owner speaks for it).
    func localStreamEnded(_ id: String, reason: StreamEndReason)
    /// A frame the pipeline accepted, for the nodes with viewers of it.
    func localFrameAccepted(_ frame: Frame)
    /// Viewers or streams changed, so the set of streams this node must
    /// subscribe to may have.
    func interestChanged()
    /// A stage's event changed a local stream's health: other nodes' viewers hear it too.
    func localStreamHealth(_ id: String, _ event: StageEvent)
    /// The clock offset of a local stream's camera, as measured here: other
    /// nodes put its frames' capture times on their clocks with it.
    func localStreamClock(_ id: String, offset: Int64)
    /// What this node's viewers need of another node's stream (`StreamDemand`).
    func demand(_ id: String, _ demand: StreamDemand)
}
