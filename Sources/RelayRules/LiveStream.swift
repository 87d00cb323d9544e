import Foundation
import Pipeline

/// Where a stream is served: here, by a streamer's connection, or by
/// another node of the cluster. One fact, so a stream can never be both
/// or neither.
enum StreamLocation {
    case local(StreamSessionHandle)
    case remote(node: String)
}

/// A stream known to the relay: connected, and `started` once its first
/// valid frame arrived (only then do viewers hear of it). In a cluster, a
/// stream served by another node is here too, so viewers see every stream
/// the same way.
package struct LiveStream {
    var location: StreamLocation
    /// The streamer's connection; nil for another node's stream.
    package var session: StreamSessionHandle? { if case .local(let session) = location { session } else { nil } }
    /// The node serving it; nil for this node.
    package var owner: String? { if case .remote(let node) = location { node } else { nil } }
    package var isLocal: Bool { session != nil }
    /// Who its frames are accepted from, as a `FrameTicket` names it.
    package var holder: FrameTicket.Holder {
        switch location {
        case .local(let session): .session(session.id)
        case .remote(let owner): .node(owner)
        }
    }
    package var started = false
    package var startedAt: Date?
    /// When the streamer last sent anything; nil for another node's stream until a frame of it arrives.
    var lastActivity: ContinuousClock.Instant?
    var idleWarned = false
    var nextSeq: UInt64 = 0
    /// Last seq sent to viewers, so a change of node never sends it backwards.
    var lastSeq: UInt64?
    /// Added to another node's seq so numbering continues where it was.
    var seqOffset: UInt64 = 0
    /// The owner's own seq of the last frame taken from it since its claim:
    /// a live frame not after it was shown already (its replay overtook it).
    var lastOwnerSeq: UInt64?
    package var frames = 0
    package var drops = 0
    package var errors = 0
    /// Kept for `snapshot.jpg` and for a tile that becomes visible; its
    /// JPEG is decoded only when asked for.
    package var latestFrame: Frame?
    /// Its ladder and what each rung costs, for the delivery policy.
    var pictures = PictureFigures()
    /// For the fps figure: frames counted at the last sample.
    var fpsSampleFrames = 0
    package var fps: Double = 0
    var lastProgressDrops = 0
    /// The pipeline its frames run through here (for another node's stream,
    /// the relayed stages of it); nil until its first frame ran.
    package var pipeline: String?
    /// The latest state of each kind a stage raised (`picture` → `frozen`), `ok` included.
    package var health: [String: StageEvent] = [:]
    /// How late its pictures arrive, from their capture times, and whether that is a problem.
    var uplink = UplinkDelay()
    /// Its frame rate and capture age over the last quarter hour, for the admin page.
    package var history = StreamHistory()
    /// The demand its streamer was last told (for another node's stream:
    /// what this node last told its owner); nil before the first.
    var demandSent: StreamDemand?
    /// For a local stream in a cluster: what each other node's viewers need
    /// of it, and when that node last said so (it repeats it while it holds).
    package var demandElsewhere: [String: (demand: StreamDemand, at: ContinuousClock.Instant)] = [:]

    init(session: StreamSessionHandle, now: ContinuousClock.Instant) {
        location = .local(session)
        lastActivity = now
    }

    /// Another node's stream, not started yet (see `RelayState.markStarted`).
    /// Its silence is its owner's to time out, so `lastActivity` counts from
    /// its first frame here.
    init(owner: String) {
        location = .remote(node: owner)
    }

    /// Continues after `lastSeq` when the stream moves here from another node.
    mutating func takeOver(session: StreamSessionHandle, now: ContinuousClock.Instant) {
        location = .local(session)
        lastActivity = now
        idleWarned = false
        if let lastSeq { nextSeq = max(nextSeq, lastSeq + 1) }
    }
}
