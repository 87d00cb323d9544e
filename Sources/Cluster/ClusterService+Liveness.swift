import Access
import RelayCore
import WireProtocol
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import Pipeline
import RESP
import ServiceLifecycle

/// Whether the other nodes are alive: this node's heartbeat, ending the
/// streams of nodes whose heartbeat stopped (in the registry, by script),
/// and ending other nodes' streams here when Redis itself is away longer
/// than the node timeout.
extension ClusterService {
    /// Renews this node's key. Its value says what the node understands
    /// (`ClusterKeys.nodeVersion`). While any live node says "1" (it does
    /// not count its viewers in `demand` events), cameras are told to send
    /// everything; while any says less than "3" (it listens on a stream's
    /// first frame channel only), every stream publishes there. Also
    /// repeats what this node's viewers need of other nodes' streams, so an
    /// owner that missed a message, or forgot it, hears it again.
    func heartbeat(_ link: any ClusterBroker) async throws {
        _ = try await link.run(RESPCommand("SET", .string(keys.node(me)), .string(ClusterKeys.nodeVersion), "PX",
                                           .string(String(settings.nodeTimeout.milliseconds))),
                               timeout: settings.heartbeatInterval)
        let versions = try await link.run(RESPCommand("EVAL", .string(ClusterKeys.nodeVersionsScript), "1", .string(keys.streams),
                                                      .string(keys.node("*"))),
                                          timeout: settings.heartbeatInterval).array ?? []
        hub.allNodesTellDemand(ClusterKeys.everyNode(versions, understands: 2))
        publisher.everyNodeListensOnEveryChoice(ClusterKeys.everyNode(versions, understands: 3))
        for (id, demand) in hub.demandForOtherNodes() { publisher.demand(id, demand) }
    }

    /// Other nodes whose heartbeat key expired: their streams end everywhere
    /// with `node_lost` (the script publishes it; every node, this one too,
    /// hears it on the control channel).
    func endLostNodes(_ link: any ClusterBroker) async throws {
        let owners = hub.remoteStreamsByOwner()
        guard !owners.isEmpty, ContinuousClock.now >= state.withLockedValue({ $0.graceUntil }) else { return }
        let alive = try await liveNodes(Set(owners.keys), link)
        for (owner, streams) in owners where !alive.contains(owner) {
            logger.warning("node lost: no heartbeat within the node timeout, ending its streams", metadata: [
                "lost_node": "\(owner)", "streams": "\(streams.sorted().joined(separator: ","))",
                "node_timeout_ms": "\(settings.nodeTimeout.milliseconds)"])
            for id in streams {
                let removed = try await endInRegistry(id, owner: owner, reason: .nodeLost, link)
                // Another node ended it first, and its message is on the way or was missed.
                if !removed { hub.remoteEnded(id, by: owner, reason: .nodeLost) }
            }
        }
    }

    func liveNodes(_ candidates: Set<String>, _ link: any ClusterBroker) async throws -> Set<String> {
        let ordered = candidates.sorted()
        let futures = ordered.map { link.send(RESPCommand("EXISTS", .string(keys.node($0)))) }
        var alive: Set<String> = [me]
        for (node, future) in zip(ordered, futures) where try await future.get().integer == 1 { alive.insert(node) }
        return alive
    }

    func endRemoteStreamsIfOutageTooLong() {
        let due = state.withLockedValue { s -> Bool in
            guard s.broker == .down, !s.remoteEndedForOutage, ContinuousClock.now - s.sinceInstant >= settings.nodeTimeout else { return false }
            s.remoteEndedForOutage = true
            return true
        }
        guard due else { return }
        let count = hub.endRemoteStreams(reason: .nodeLost)
        if count > 0 {
            logger.warning("redis away longer than the node timeout: other nodes' streams ended here", metadata: [
                "streams": "\(count)", "reason": "node_lost"])
        }
    }


    func endInRegistry(_ id: String, owner: String, reason: StreamEndReason, _ link: any ClusterBroker) async throws -> Bool {
        let event = ClusterEvent.ended(stream: id, node: owner, reason: reason)
        let reply = try await link.run(ClusterPublisher.evalCommand(keys.endScript, [id, owner, event.json], keys: keys), timeout: .seconds(5))
        return reply.integer == 1
    }
}
