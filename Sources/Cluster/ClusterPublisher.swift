import Foundation
import Logging
import NIOConcurrencyHelpers
import Pipeline
import RESP
import RelayCore
import WireProtocol

/// The hub's way out to the cluster (`ClusterLink`): what this node's
/// streams do becomes registry scripts and frame messages on the cluster's
/// link (`ClusterBroker`), and "viewers changed" becomes a signal the service reads.
///
/// Made before the hub and given to it; the service is made after the hub
/// and given both. Nothing is wired in two steps, and the publisher never
/// calls back into the hub.
package final class ClusterPublisher: ClusterLink, Sendable {
    private let nodeID: String
    private let metrics: RelayMetrics
    private let logger: Logger
    /// The link while Redis is reachable; nil while it is away (a claim or
    /// an end then waits for the resync after reconnecting).
    private let link = NIOLockedValueBox<(any ClusterBroker)?>(nil)
    /// Where this node's streams publish on a Redis Cluster, and whether
    /// every live node listens on all of a stream's channels (until the
    /// first heartbeat says so, or while an older node is in the cluster,
    /// every stream publishes on its first).
    private let placement = NIOLockedValueBox<(streams: FramePlacement, everyNodeListens: Bool)>((FramePlacement(), false))
    /// Viewers or streams changed; many changes in a row are read as one.
    let interestChanges: AsyncStream<Void>
    private let interest: AsyncStream<Void>.Continuation

    package init(nodeID: String, metrics: RelayMetrics, logger: Logger) {
        self.nodeID = nodeID
        self.metrics = metrics
        self.logger = logger
        (interestChanges, interest) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// The service's connection state: publishing goes through `link` from now on.
    func use(_ link: (any ClusterBroker)?) {
        self.link.withLockedValue { $0 = link }
    }

    private var current: (any ClusterBroker)? { link.withLockedValue { $0 } }

    /// No more interest signals: the service is stopping.
    func finish() { interest.finish() }

    // MARK: ClusterLink

    package func localStreamConnected(_ id: String, started: Bool) {
        guard let link = current else { return }  // announced on reconnect
        claim(id, started: started, on: link)
    }

    package func localStreamStarted(_ id: String) {
        guard let link = current else { return }
        script(link.keys.startScript, [id, nodeID, ClusterEvent.started(stream: id, node: nodeID).json], on: link)
    }

    package func localStreamEnded(_ id: String, reason: StreamEndReason) {
        placement.withLockedValue { $0.streams.forget(id) }
        guard let link = current else { return }  // resync removes it
        script(link.keys.endScript, [id, nodeID, ClusterEvent.ended(stream: id, node: nodeID, reason: reason).json], on: link)
    }

    package func localFrameAccepted(_ frame: Frame) {
        publish(frame) { [self] link in frameChannel(of: frame.streamID, on: link) }
    }

    /// The heartbeat's reading of the other nodes' versions.
    func everyNodeListensOnEveryChoice(_ yes: Bool) {
        let changed = placement.withLockedValue { p in
            defer { p.everyNodeListens = yes }
            return p.everyNodeListens != yes
        }
        guard changed, current?.keys.placesFrames == true else { return }
        logger.info(yes ? "every node listens on all of a stream's frame channels; streams are placed on the least used shard"
                        : "a node of an older version is live; streams publish on their first frame channel")
    }

    /// The channel this stream's frames take (`FramePlacement`).
    private func frameChannel(of id: String, on link: any ClusterBroker) -> String {
        let (channel, placed) = placement.withLockedValue { p -> (String?, [String: Int]?) in
            guard p.everyNodeListens, link.keys.placesFrames else { return (nil, nil) }
            // Asked for every frame: a placed stream's channel, before its candidates are named.
            if let chosen = p.streams.chosenChannel(of: id) { return (chosen, nil) }
            let (channel, placedNow) = p.streams.channel(for: id, among: link.keys.frameChannels(id), shardOf: link.shard(of:))
            return (channel, placedNow ? p.streams.streamsPerShard(shardOf: link.shard(of:)) : nil)
        }
        guard let channel else { return link.keys.frames(id) }
        if let placed {
            logger.info("stream's frames placed on the least used shard", metadata: [
                "stream_id": "\(id)", "channel": "\(channel)", "shard": "\(link.shard(of: channel) ?? "unknown")",
                "streams_per_shard": "\(placed.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))",
            ])
        }
        return channel
    }

    /// A stream's latest frame again, for `node`, which has just begun to watch it.
    func replay(_ frame: Frame, to node: String) {
        publish(frame) { $0.keys.replay(node) }
    }

    /// Asks the owner of each stream for its latest frame (this node has just subscribed to them).
    func askForReplays(of streams: some Sequence<String>) {
        guard let link = current else { return }
        for id in streams { link.announce(ClusterEvent.replayWanted(stream: id, node: nodeID).json, on: link.keys.controlChannel) }
    }

    private func publish(_ frame: Frame, on channel: (any ClusterBroker) -> String) {
        guard let link = current else {
            metrics.clusterFrameNotPublished("broker_down")
            return
        }
        var frame = frame
        guard let jpeg = frame.resolveJPEG() else {
            metrics.clusterFrameNotPublished("not_jpeg")
            return
        }
        let envelope = ClusterFrameEnvelope(node: nodeID, stream: frame.streamID, seq: frame.seq, timestamp: frame.timestamp,
                                            receivedAt: frame.receivedAt, jpeg: jpeg)
        // Latest wins here too: a frame that would queue behind a full socket is skipped.
        switch link.publishFrame(envelope.encode(), on: channel(link)) {
        case .sent: metrics.clusterFramePublished()
        case .backpressure: metrics.clusterFrameNotPublished("backpressure")
        case .down: metrics.clusterFrameNotPublished("broker_down")
        }
    }

    package func interestChanged() { interest.yield() }

    package func localStreamHealth(_ id: String, _ event: StageEvent) {
        guard let link = current else { return }  // a resync after an outage does not repeat it
        link.announce(ClusterEvent.health(stream: id, node: nodeID, event: event).json, on: link.keys.controlChannel)
    }

    package func demand(_ id: String, _ demand: StreamDemand) {
        guard let link = current else { return }  // repeated with the next heartbeat
        link.announce(ClusterEvent.demand(stream: id, node: nodeID, watched: demand.watched, width: demand.width, height: demand.height,
                                          fps: demand.fps).json, on: link.keys.controlChannel)
    }

    package func localStreamClock(_ id: String, offset: Int64) {
        guard let link = current else { return }  // the next measurement says it again
        link.announce(ClusterEvent.clock(stream: id, node: nodeID, offsetMs: offset).json, on: link.keys.controlChannel)
    }

    // MARK: Registry scripts

    /// Records this node as the stream's owner and tells every node.
    func claim(_ id: String, started: Bool, on link: any ClusterBroker) {
        let event = ClusterEvent.claimed(stream: id, node: nodeID, started: started)
        script(link.keys.claimScript, [id, nodeID, started ? "1" : "0", event.json], on: link)
    }

    /// A registry script: the registry and its channel are its keys.
    static func evalCommand(_ source: String, _ arguments: [String], keys: ClusterKeys) -> RESPCommand {
        RESPCommand(["EVAL", .string(source), "2", .string(keys.streams), .string(keys.controlChannel)] + arguments.map { .string($0) })
    }

    /// Sends a registry script without waiting; a refusal is logged.
    private func script(_ source: String, _ arguments: [String], on link: any ClusterBroker) {
        let logger = logger
        link.send(Self.evalCommand(source, arguments, keys: link.keys)).whenComplete { result in
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
