import Foundation
import Logging
import NIOConcurrencyHelpers
import Pipeline
import RESP
import RelayCore
import WireProtocol

/// The hub's way out to the cluster (`ClusterLink`): what this node's
/// streams do becomes registry scripts and frame messages on the command
/// connection, and "viewers changed" becomes a signal the service reads.
///
/// Made before the hub and given to it; the service is made after the hub
/// and given both. Nothing is wired in two steps, and the publisher never
/// calls back into the hub.
package final class ClusterPublisher: ClusterLink, Sendable {
    private let nodeID: String
    private let metrics: RelayMetrics
    private let logger: Logger
    /// The command connection while Redis is reachable; nil while it is away
    /// (a claim or an end then waits for the resync after reconnecting).
    private let command = NIOLockedValueBox<RedisConnection?>(nil)
    /// Viewers or streams changed; many changes in a row are read as one.
    package let interestChanges: AsyncStream<Void>
    private let interest: AsyncStream<Void>.Continuation

    package init(nodeID: String, metrics: RelayMetrics, logger: Logger) {
        self.nodeID = nodeID
        self.metrics = metrics
        self.logger = logger
        (interestChanges, interest) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// The service's connection state: publishing goes through `connection` from now on.
    package func use(_ connection: RedisConnection?) {
        command.withLockedValue { $0 = connection }
    }

    /// No more interest signals: the service is stopping.
    package func finish() { interest.finish() }

    // MARK: ClusterLink

    package func localStreamConnected(_ id: String, started: Bool) {
        guard let command = command.withLockedValue({ $0 }) else { return }  // announced on reconnect
        claim(id, started: started, on: command)
    }

    package func localStreamStarted(_ id: String) {
        guard let command = command.withLockedValue({ $0 }) else { return }
        script(ClusterKeys.startScript, [id, nodeID, ClusterEvent.started(stream: id, node: nodeID).json], on: command)
    }

    package func localStreamEnded(_ id: String, reason: StreamEndReason) {
        guard let command = command.withLockedValue({ $0 }) else { return }  // resync removes it
        script(ClusterKeys.endScript, [id, nodeID, ClusterEvent.ended(stream: id, node: nodeID, reason: reason).json], on: command)
    }

    package func localFrameAccepted(_ frame: Frame) {
        publish(frame, on: ClusterKeys.frames(frame.streamID))
    }

    /// A stream's latest frame again, for `node`, which has just begun to watch it.
    package func replay(_ frame: Frame, to node: String) {
        publish(frame, on: ClusterKeys.replay(node))
    }

    /// Asks the owner of each stream for its latest frame (this node has just subscribed to them).
    package func askForReplays(of streams: some Sequence<String>) {
        guard let command = command.withLockedValue({ $0 }) else { return }
        for id in streams {
            command.sendIgnoringReply(RESPCommand("PUBLISH", .string(ClusterKeys.control), .string(ClusterEvent.replayWanted(stream: id, node: nodeID).json)))
        }
    }

    private func publish(_ frame: Frame, on channel: String) {
        guard let command = command.withLockedValue({ $0 }) else {
            metrics.clusterFrameNotPublished("broker_down")
            return
        }
        // Latest wins here too: a frame that would queue behind a full socket is skipped.
        guard command.isWritable else {
            metrics.clusterFrameNotPublished("backpressure")
            return
        }
        var frame = frame
        guard let jpeg = frame.resolveJPEG() else {
            metrics.clusterFrameNotPublished("not_jpeg")
            return
        }
        let envelope = ClusterFrameEnvelope(node: nodeID, stream: frame.streamID, seq: frame.seq, timestamp: frame.timestamp,
                                            receivedAt: frame.receivedAt, jpeg: jpeg)
        command.sendIgnoringReply(RESPCommand("PUBLISH", .string(channel), .bytes(envelope.encode())))
        metrics.clusterFramePublished()
    }

    package func interestChanged() { interest.yield() }

    package func localStreamHealth(_ id: String, _ event: StageEvent) {
        guard let command = command.withLockedValue({ $0 }) else { return }  // a resync after an outage does not repeat it
        command.sendIgnoringReply(RESPCommand("PUBLISH", .string(ClusterKeys.control),
                                              .string(ClusterEvent.health(stream: id, node: nodeID, event: event).json)))
    }

    package func demand(_ id: String, _ demand: StreamDemand) {
        guard let command = command.withLockedValue({ $0 }) else { return }  // repeated with the next heartbeat
        command.sendIgnoringReply(RESPCommand("PUBLISH", .string(ClusterKeys.control), .string(ClusterEvent.demand(
            stream: id, node: nodeID, watched: demand.watched, width: demand.width, height: demand.height, fps: demand.fps).json)))
    }

    package func localStreamClock(_ id: String, offset: Int64) {
        guard let command = command.withLockedValue({ $0 }) else { return }  // the next measurement says it again
        command.sendIgnoringReply(RESPCommand("PUBLISH", .string(ClusterKeys.control),
                                              .string(ClusterEvent.clock(stream: id, node: nodeID, offsetMs: offset).json)))
    }

    // MARK: Registry scripts

    /// Records this node as the stream's owner and tells every node.
    package func claim(_ id: String, started: Bool, on command: RedisConnection) {
        let event = ClusterEvent.claimed(stream: id, node: nodeID, started: started)
        script(ClusterKeys.claimScript, [id, nodeID, started ? "1" : "0", event.json], on: command)
    }

    package static func evalCommand(_ source: String, _ arguments: [String]) -> RESPCommand {
        RESPCommand(["EVAL", .string(source), "2", .string(ClusterKeys.streams), .string(ClusterKeys.control)] + arguments.map { .string($0) })
    }

    /// Sends a registry script without waiting; a refusal is logged.
    private func script(_ source: String, _ arguments: [String], on command: RedisConnection) {
        let logger = logger
        command.send(Self.evalCommand(source, arguments)).whenComplete { result in
            switch result {
            case .success(.error(let message)):
                logger.error("redis refused a registry update", metadata: ["stream_id": "\(arguments[0])", "error": "\(message)"])
            case .failure(let error):
                logger.debug("registry update lost with the connection; resync repeats it", metadata: ["stream_id": "\(arguments[0])", "error": "\(error)"])
            default:
                break
            }
        }
    }
}
