import RelayCore
import Logging
import NIOConcurrencyHelpers
import Pipeline

/// Runs this node's relay stages (`downscale`, `fan-out`) for the frames of
/// other nodes' streams: one task per remote stream, fed by an `AsyncStream`,
/// as a local stream's connection task runs its own pipeline. libturbojpeg
/// work therefore never runs on the subscriber connection's I/O event loop,
/// nor under a lock; the loop only hands each frame over.
///
/// A stream's queue keeps its newest frames (a relay that falls behind
/// loses older frames, never newer ones), in order. The tasks are children
/// of `run()`, which the cluster service runs for its whole life.
final class RemoteStreamRelays: Sendable {
    /// Frames waiting for a stream's relay task beyond this are the oldest dropped.
    static let queueDepth = 8

    private struct Relay {
        let node: String
        let frames: AsyncStream<Frame>.Continuation
    }

    private struct Start: Sendable {
        let streamID: String
        let node: String
        let hub: ViewerHub
        let frames: AsyncStream<Frame>
    }

    private let relays = NIOLockedValueBox<[String: Relay]>([:])
    private let starts: AsyncStream<Start>
    private let startContinuation: AsyncStream<Start>.Continuation
    private let makeRunner: @Sendable (_ streamID: String, _ node: String, _ hub: ViewerHub) -> ReloadFollowingRunner
    private let logger: Logger

    init(logger: Logger, makeRunner: @escaping @Sendable (_ streamID: String, _ node: String, _ hub: ViewerHub) -> ReloadFollowingRunner) {
        self.logger = logger
        self.makeRunner = makeRunner
        (starts, startContinuation) = AsyncStream.makeStream(of: Start.self)
    }

    /// Hands a frame to its stream's relay task, starting one for a stream
    /// new here or now served by another node. Never blocks.
    func submit(_ frame: Frame, from node: String, to hub: ViewerHub) {
        let start: Start? = relays.withLockedValue { relays in
            if let relay = relays[frame.streamID], relay.node == node {
                relay.frames.yield(frame)
                return nil
            }
            relays[frame.streamID]?.frames.finish()
            let (frames, continuation) = AsyncStream.makeStream(of: Frame.self, bufferingPolicy: .bufferingNewest(Self.queueDepth))
            continuation.yield(frame)
            relays[frame.streamID] = Relay(node: node, frames: continuation)
            return Start(streamID: frame.streamID, node: node, hub: hub, frames: frames)
        }
        if let start { startContinuation.yield(start) }
    }

    /// Ends the relay tasks of streams no longer subscribed here (their queued frames are still relayed).
    func stop(_ streamIDs: some Sequence<String>) {
        relays.withLockedValue { relays in
            for id in streamIDs { relays.removeValue(forKey: id)?.frames.finish() }
        }
    }

    func stopAll() {
        relays.withLockedValue { relays in
            for relay in relays.values { relay.frames.finish() }
            relays.removeAll()
        }
    }

    /// Runs every relay task until `finish()`.
    func run() async {
        await withDiscardingTaskGroup { group in
            for await start in starts {
                group.addTask { [makeRunner, logger] in
                    var runner = makeRunner(start.streamID, start.node, start.hub)
                    start.hub.streamRunsPipeline(start.streamID, runner.pipelineName)
                    for await frame in start.frames {
                        if let move = runner.followReload() { start.hub.streamRunsPipeline(start.streamID, move.to) }
                        if case .rejected(let rejection, _) = runner.run(frame) {
                            logger.warning("frame from another node rejected by a relay stage", metadata: [
                                "stream_id": "\(start.streamID)", "from_node": "\(start.node)",
                                "stage": "\(rejection.stage)", "reason": "\(rejection.code)"])
                        }
                    }
                }
            }
        }
    }

    /// Ends `run()` once every relay task has finished.
    func finish() {
        stopAll()
        startContinuation.finish()
    }
}
