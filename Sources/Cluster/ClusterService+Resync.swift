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

/// Agreeing with Redis again: the registry read whole after a (re)join,
/// and the frame subscriptions made to match what viewers here watch.
extension ClusterService {
    /// Reads the registry and aligns both sides: this node's view of other
    /// nodes' streams, and the registry's view of this node's. Returns how
    /// many local streams were announced.
    func resync(_ link: any ClusterBroker) async throws -> Int {
        let known = hub.remoteStreamsByOwner().keys.sorted()
        let snapshot = try await link.run(RESPCommand(["EVAL", .string(ClusterKeys.snapshotScript), "2", .string(keys.streams),
                                                       .string(keys.node(""))] + known.map { .string($0) }), timeout: .seconds(5)).array ?? []
        let raw = snapshot.first?.array ?? []
        var registry: [String: (owner: String, started: Bool)] = [:]
        for pair in stride(from: 0, to: raw.count - 1, by: 2) {
            guard let id = raw[pair].string, let value = raw[pair + 1].string, let entry = ClusterKeys.parseEntry(value) else { continue }
            registry[id] = entry
        }
        var alive: Set<String> = [me]
        for node in (snapshot.count > 1 ? snapshot[1].array ?? [] : []) { if let id = node.string { alive.insert(id) } }
        let mine = hub.resync(registry: registry, liveNodes: alive, me: me)
        for stream in mine { publisher.claim(stream.id, started: stream.started, on: link) }
        // Entries nobody serves any more: this node's from before the outage,
        // or a dead node's that no live node was there to clean up. A stream
        // this node still holds for its owner is left to the liveness check
        // after the grace period: its owner may have re-announced it and not
        // yet renewed its heartbeat (after an outage every node rejoins at
        // once), and ending it here ended a live stream as node_lost.
        let mineIDs = Set(mine.map(\.id))
        let held = hub.remoteStreamsByOwner()
        for (id, entry) in registry where entry.owner == me ? !mineIDs.contains(id)
            : !alive.contains(entry.owner) && held[entry.owner]?.contains(id) != true {
            _ = try await endInRegistry(id, owner: entry.owner, reason: entry.owner == me ? .closed : .nodeLost, link)
        }
        return mine.count
    }

    /// Subscribes to the frame channels of the remote streams watched here
    /// (every one a stream's owner may publish on) and unsubscribes from the
    /// rest: a set, so one subscription per channel however many viewers
    /// watch the stream.
    func reconcile() {
        let wanted = hub.watchedRemoteStreams()
        let (link, added, removed) = state.withLockedValue { s -> ((any ClusterBroker)?, Set<String>, Set<String>) in
            guard s.broker == .connected, let link = s.link else { return (nil, [], []) }
            let added = wanted.subtracting(s.subscribed), removed = s.subscribed.subtracting(wanted)
            s.subscribed = wanted
            // Told under the lock, so two reconciliations reach the broker in the order they decided.
            if !added.isEmpty || !removed.isEmpty { link.listen(to: keys.alwaysSubscribed(by: me).union(wanted.flatMap(keys.frameChannels))) }
            return (link, added, removed)
        }
        guard link != nil else { return }
        if !removed.isEmpty {
            relays.stop(removed)
        }
        if !added.isEmpty || !removed.isEmpty {
            logger.debug("frame subscriptions changed", metadata: [
                "subscribed": "\(added.sorted().joined(separator: ","))", "unsubscribed": "\(removed.sorted().joined(separator: ","))"])
            metrics.clusterSubscriptions(wanted.count)
        }
    }
}
