import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Pipeline
import RelayCore
import Synchronization

/// A stream fed by something other than a WebSocket streamer: an HTTP
/// ingest request, or a camera the relay pulls. Its session with the hub,
/// its pipeline, and its audit lines.
///
/// It exists so every way in gives a stream the same life: connected
/// through the hub (limits and the replacement rule), each frame through
/// the stream's own pipeline as a WebSocket frame would go, ended once,
/// whoever asks first (the feeder, the hub, housekeeping, a shutdown).
final class StreamFeed: Sendable {
    let streamID: String
    let session: StreamSessionHandle
    let logger: Logger
    let identity: AuditEvent.Identity
    let started = ContinuousClock.now
    let frames = NIOLockedValueBox((received: 0, taken: 0, ended: false))
    /// Its stages' per-stream state: a feeder's requests may overlap, so one frame at a time.
    private let runner: Mutex<ReloadFollowingRunner>
    private let services: Services

    /// What every feed of a relay shares.
    struct Services: Sendable {
        let hub: ViewerHub
        let live: LiveConfiguration
        let metrics: RelayMetrics
        let audit: AuditLog?
        /// The relay's clock, which stamps each frame's arrival.
        let clock: any RelayClock
    }

    /// Why a stream could not be opened.
    enum Refusal: Error {
        /// A limit (`--max-streams`) was reached: the reason says which.
        case limit(String)
        case shuttingDown
    }

    private init(streamID: String, session: StreamSessionHandle, runner: sending ReloadFollowingRunner, identity: AuditEvent.Identity,
                 services: Services, logger: Logger) {
        self.streamID = streamID
        self.session = session
        self.runner = Mutex(runner)
        self.identity = identity
        self.services = services
        self.logger = logger
    }

    /// Connects the stream (replacing an older streamer of it). `onEnd` runs
    /// once when it ends, with the reason, whoever ended it.
    static func open(_ id: String, services: Services, identity: AuditEvent.Identity, kind: String, logger: Logger,
                     onEnd: @escaping @Sendable (StreamFeed, StreamEndReason) -> Void = { _, _ in }) throws(Refusal) -> StreamFeed {
        let hub = services.hub, metrics = services.metrics
        var logger = logger
        logger[metadataKey: "stream_id"] = "\(id)"
        let (commands, continuation) = AsyncStream.makeStream(of: StreamSessionHandle.Command.self, bufferingPolicy: .bufferingNewest(16))
        let session = StreamSessionHandle(id: hub.makeSessionID(), remoteAddress: identity.client, commands: continuation)
        let connected: (replaced: StreamSessionHandle?, firstSeq: UInt64)?
        do throws(LimitRefusal) {
            connected = try hub.connectStream(id, session: session)
        } catch {
            metrics.limitHit(error.limit)
            throw .limit(error.reason)
        }
        guard let (replaced, _) = connected else { throw .shuttingDown }
        metrics.streamerConnected()
        let stageContext = StageContext(streamID: id, logger: logger, sink: hub)
        let runner = ReloadFollowingRunner(streamID: id, live: services.live) { pipeline in
            pipeline.makeRunner(context: stageContext, observer: metrics)
        }
        let pipelineName = runner.pipelineName
        hub.streamRunsPipeline(id, pipelineName)
        let feed = StreamFeed(streamID: id, session: session, runner: runner, identity: identity, services: services, logger: logger)
        replaced?.close(.replaced)
        logger.info("streamer connected", metadata: ["remote": "\(identity.client)", "feed": "\(kind)", "pipeline": "\(pipelineName)"])
        services.audit?.record(.sessionStarted(kind: .streamer, session: "s-\(session.id)", identity: identity, streams: [id]))
        // A close asked by the hub or housekeeping (replaced, idle, errors, shutdown).
        Task {
            for await command in commands {
                if case .close(let reason) = command {
                    if feed.end(reason: reason) { onEnd(feed, reason) }
                    return
                }
            }
        }
        return feed
    }

    /// Whether the relay has asked this stream to end.
    var endReason: StreamEndReason? { session.endReason }

    /// Ends the stream once; true for the call that did.
    @discardableResult
    func end(reason: StreamEndReason) -> Bool {
        let first = frames.withLockedValue { counts in
            defer { counts.ended = true }
            return !counts.ended
        }
        guard first else { return false }
        services.hub.endStream(streamID, session: session, reason: reason)
        services.metrics.streamerDisconnected()
        let counts = frames.withLockedValue { $0 }
        logger.info("streamer ended", metadata: ["reason": "\(reason.rawValue)", "frames": "\(counts.received)"])
        services.audit?.record(.sessionEnded(kind: .streamer, session: "s-\(session.id)", identity: identity, streams: [streamID],
                                             duration: .now - started, frames: counts.taken, reason: reason.rawValue))
        return true
    }

    /// Runs one JPEG through the stream's pipeline, as a WebSocket frame would be.
    @discardableResult
    func submit(_ jpeg: ByteBuffer) -> (seq: UInt64, result: PipelineResult) {
        let hub = services.hub, metrics = services.metrics
        let seq = hub.streamActivity(streamID, isFrame: true)
        let frame = Frame(streamID: streamID, seq: seq, arrival: services.clock.instant, timestamp: nil,
                          receivedAt: services.clock.now.millisecondsSince1970, payload: .binary(jpeg))
        metrics.frameReceived()
        let result = runner.withLock { runner -> PipelineResult in
            if let move = runner.followReload() { hub.streamRunsPipeline(streamID, move.to) }
            return runner.run(frame)
        }
        frames.withLockedValue { counts in
            counts.received += 1
            if result.taken { counts.taken += 1 }
        }
        FrameOutcome(hub: hub, metrics: metrics, streamID: streamID).record(result, seq: seq, session: session, logger: logger)
        return (seq, result)
    }
}
