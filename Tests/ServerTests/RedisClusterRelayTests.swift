@testable import FramepipeServer
@testable import Cluster
import Foundation
@testable import RESP
import TestFixtures
import Testing

/// Relays on a Redis Cluster where the cluster itself changes under them:
/// streams spread over the shards, a slot moved while frames flow, a shard's
/// primary killed. (What does not depend on the cluster changing runs in
/// `ClusterTests` on both one Redis and a Redis Cluster.)
extension OneAtATime {
    @Suite("Relays on a Redis Cluster", .serialized, .timeLimit(.minutes(2)), .sharedRedisCluster)
    struct RedisClusterRelayTests {
        /// The registry shard's and other shards' stream ids: the first ids
        /// `cam-N` whose frame channel lives on (or off) the registry's shard.
        static func streamID(onRegistryShard: Bool, _ topology: RedisClusterTopology) -> String {
            let keys = ClusterKeys.onRedisCluster
            let registry = topology.shard(forKey: keys.streams)?.primary.endpoint
            return (1...).lazy.map { "cam-\($0)" }.first { (topology.shard(forKey: keys.frames($0))?.primary.endpoint == registry) == onRegistryShard }!
        }

        /// Sends frames in step with A's own viewer until B's viewer has one
        /// sent after `since`; returns how long that took.
        static func framesUntilSeenOnB(_ streamer: TestSocket, _ onA: TestSocket, _ onB: TestSocket, from seq: inout Int,
                                       timeout: Duration) async throws -> Duration {
            let started = ContinuousClock.now, first = Double(seq)
            while ContinuousClock.now - started < timeout {
                streamer.send(TestFrames.text(seq))
                let sent = Double(seq)
                seq += 1
                try await onA.waitFor("frame \(sent) on A") { $0["type"] == .string("frame") && $0["seq"] == .number(sent) }
                if onB.json(type: "frame").contains(where: { ($0["seq"]?.numberValue ?? -1) >= first }) { return ContinuousClock.now - started }
            }
            throw RelayHandle.TimedOut(what: "a frame on B, for \(timeout)")
        }

        /// A node's streams are spread evenly over the shards, each published
        /// on the one of its channels whose shard carried fewest so far; every
        /// channel lives on the shard that owns its slot, and no other shard
        /// has a subscriber for it or carries it.
        @Test func eachStreamsFramesTouchOnlyItsOwnShard() async throws {
            let cluster = try SharedRedisCluster.current
            try await cluster.flushAll()
            try await withTwoNodes(cluster) { a, b in
                let ids = (1...9).map { "ward-\($0)" }
                let onB = try await b.viewer()
                var streamers: [TestSocket] = []
                for id in ids {
                    let streamer = try await a.streamer(id)
                    streamer.send(TestFrames.text(0))
                    do {
                        try await onB.waitFor("\(id) on B") { $0["type"] == .string("frame") && $0["stream_id"] == .string(id) }
                    } catch {
                        let metrics = { (port: Int) async throws in
                            try await RawHTTP.get(port: port, path: "/metrics").text.split(separator: "\n")
                                .filter { $0.hasPrefix("framepipe_cluster") }.joined(separator: "; ")
                        }
                        Issue.record("A: \(try await metrics(a.port))\n\(a.log.recent)\nB: \(try await metrics(b.port))\n\(b.log.recent)")
                        throw error
                    }
                    streamers.append(streamer)
                }
                let topology = try await cluster.topology()
                // A placed each stream on one of its channels, evening out the shards.
                let placed = Dictionary(a.log.all.filter { $0.message == "stream's frames placed on the least used shard" }
                    .map { ($0.metadata["stream_id"] ?? "", $0.metadata["channel"] ?? "") }) { first, _ in first }
                #expect(Set(placed.keys) == Set(ids), "every stream placed once")
                let perShard = Dictionary(grouping: ids.compactMap { placed[$0].flatMap { topology.shard(forKey: $0)?.primary.endpoint } }) { $0 }
                    .mapValues(\.count)
                #expect(perShard.values.sorted() == [3, 3, 3], "nine streams, three on each shard: \(perShard)")
                for id in ids { #expect(placed[id].map(cluster.keys.frameChannels(id).contains) == true, "\(id)'s own channel") }
                // B listens on every channel of each stream, each on the shard that owns its slot.
                for shard in topology.shards {
                    let primary = try #require(cluster.node(at: shard.primary.endpoint))
                    let carried = try await primary.command("PUBSUB", "SHARDCHANNELS", "framepipe:frames:*").array?.compactMap(\.string) ?? []
                    let owned = ids.flatMap(cluster.keys.frameChannels).filter { topology.shard(forKey: $0)?.primary.endpoint == shard.primary.endpoint }
                    #expect(Set(carried) == Set(owned), "shard \(shard.primary.endpoint) carries only its own slots' channels")
                }
                for streamer in streamers { await streamer.close() }
            }
        }

        /// A rolling upgrade: while a live node's key says version 2 (it
        /// listens on a stream's first channel only), streams are not placed
        /// and publish on their first channel; once that node is gone, the
        /// next frame places the stream, and the other node still sees it.
        @Test func streamsArePlacedOnlyOnceEveryNodeListensOnEveryChannel() async throws {
            let cluster = try SharedRedisCluster.current
            try await cluster.flushAll()
            let oldNode = cluster.keys.node("old-node")
            _ = try await cluster.command(onKey: oldNode, ["SET", oldNode, "2", "PX", "600000"])
            try await withTwoNodes(cluster) { a, b in
                let onA = try await a.viewer(), onB = try await b.viewer()
                let streamer = try await a.streamer("ward-1")
                var seq = 0
                _ = try await Self.framesUntilSeenOnB(streamer, onA, onB, from: &seq, timeout: .seconds(10))
                #expect(!a.log.contains("stream's frames placed on the least used shard"), "not placed while an older node lives")
                _ = try await cluster.command(onKey: oldNode, ["DEL", oldNode])
                // A's next heartbeat finds only new nodes; its next frame places the stream, and B goes on seeing it.
                try await a.log.waitFor("every node listens on all of a stream's frame channels; streams are placed on the least used shard")
                _ = try await Self.framesUntilSeenOnB(streamer, onA, onB, from: &seq, timeout: .seconds(10))
                #expect(a.log.contains("stream's frames placed on the least used shard", ["stream_id": "ward-1"]))
                await streamer.close()
            }
        }

        /// Resharding: the slot of a watched stream's channel moves to another
        /// shard while frames flow; B follows it, and the stream goes on.
        @Test func aSlotMovedWhileFramesFlowIsFollowed() async throws {
            let cluster = try SharedRedisCluster.current
            try await cluster.flushAll()
            try await withTwoNodes(cluster) { a, b in
                let topology = try await cluster.topology()
                let id = Self.streamID(onRegistryShard: false, topology)
                let channel = cluster.keys.frames(id)
                let onA = try await a.viewer(), onB = try await b.viewer()
                let streamer = try await a.streamer(id)
                var seq = 0
                _ = try await Self.framesUntilSeenOnB(streamer, onA, onB, from: &seq, timeout: .seconds(10))
                let from = try #require(topology.shard(forKey: channel)?.primary)
                let to = try #require(topology.shards.first { $0.primary.endpoint != from.endpoint && !$0.slots.contains { $0.contains(RedisKeySlot.of(cluster.keys.streams)) } }?.primary)
                try await cluster.migrate(slot: RedisKeySlot.of(channel), from: from, to: to, finish: true)

                do {
                    _ = try await Self.framesUntilSeenOnB(streamer, onA, onB, from: &seq, timeout: .seconds(10))
                } catch {
                    var where_ = ""
                    for shard in try await cluster.topology().shards {
                        let count = try await cluster.node(at: shard.primary.endpoint)!.command("PUBSUB", "SHARDNUMSUB", channel).array?[1].integer
                        where_ += " \(shard.primary.endpoint)=\(count ?? -1)"
                    }
                    let published = try await RawHTTP.get(port: a.port, path: "/metrics").text.split(separator: "\n")
                        .filter { $0.hasPrefix("framepipe_cluster_frames") }.joined(separator: "; ")
                    Issue.record("moved \(from.endpoint) → \(to.endpoint); subscribers:\(where_); A: \(published)\nB:\n\(b.log.recent)")
                    throw error
                }
                try await b.eventually("B subscribed on the new owner only") {
                    let here = try await cluster.node(at: to.endpoint)!.command("PUBSUB", "SHARDNUMSUB", channel).array?[1].integer
                    let there = try await cluster.node(at: from.endpoint)!.command("PUBSUB", "SHARDNUMSUB", channel).array?[1].integer
                    return here == 1 && there == 0
                }
                for viewer in [onA, onB] {
                    let seqs = viewer.json(type: "frame").compactMap { $0["seq"]?.numberValue }
                    #expect(seqs == seqs.sorted(), "in order")
                    #expect(viewer.json(type: "stream_ended").isEmpty)
                }
                await streamer.close()
                // Put the slot back, for the tests after this one.
                try await cluster.migrate(slot: RedisKeySlot.of(channel), from: to, to: from, finish: true)
            }
        }

        /// A shard's primary dies (kill -9): its replica takes over, and the
        /// streams whose channels it carries reach B again. The registry is on
        /// another shard, so neither node's link to the cluster breaks.
        @Test func aFrameShardsPrimaryKilledLosesNoStream() async throws {
            try await killingAPrimary(ofRegistryShard: false)
        }

        /// The registry's shard's primary dies: both nodes lose their link for
        /// as long as the cluster takes to promote its replica, keep serving
        /// their own viewers meanwhile, join again, and no stream ends (the
        /// node timeout is longer than the failover).
        @Test func theRegistryShardsPrimaryKilledLosesNoStream() async throws {
            try await killingAPrimary(ofRegistryShard: true)
        }

        func killingAPrimary(ofRegistryShard registryShard: Bool) async throws {
            let cluster = try SharedRedisCluster.current
            try await cluster.flushAll()
            let nodeTimeout = Duration.seconds(10)
            try await withJoinedNodes(.node("node-a", cluster, nodeTimeout: nodeTimeout), .node("node-b", cluster, nodeTimeout: nodeTimeout)) { a, b in
                let topology = try await cluster.topology()
                let id = Self.streamID(onRegistryShard: registryShard, topology)
                let shard = try #require(topology.shard(forKey: cluster.keys.frames(id)))
                let replica = try #require(shard.replicas.first)
                let onA = try await a.viewer(), onB = try await b.viewer()
                let streamer = try await a.streamer(id)
                var seq = 0
                _ = try await Self.framesUntilSeenOnB(streamer, onA, onB, from: &seq, timeout: .seconds(10))

                let victim = try #require(cluster.node(at: shard.primary.endpoint))
                victim.kill9()
                // Bound: the cluster's node timeout to notice, then the replica's election, several times over.
                let gap = try await Self.framesUntilSeenOnB(streamer, onA, onB, from: &seq, timeout: RedisClusterGroup.nodeTimeout * 15)
                try await cluster.waitUntilPrimary(replica.endpoint, timeout: .seconds(10))
                // The figure docs/cluster.md quotes, in the test's output.
                FileHandle.standardError.write(Data("figure: \(registryShard ? "registry" : "frame") shard failover, frames on B again after \(gap)\n".utf8))
                for viewer in [onA, onB] {
                    #expect(viewer.json(type: "stream_ended").isEmpty, "no stream ended: its owner is alive")
                    let seqs = viewer.json(type: "frame").compactMap { $0["seq"]?.numberValue }
                    #expect(seqs == seqs.sorted(), "in order")
                }
                #expect(onA.json(type: "frame").count == seq, "A's own viewer got every frame, failover or not")
                if registryShard {
                    // A may publish again a moment before it logs that it is back.
                    try await a.log.waitFor("redis is back; cluster delivery resumes")
                    try await b.eventually("the registry again lists the stream") { try await cluster.registryEntry(id) == "node-a\t1" }
                } else {
                    #expect(!a.log.all.contains { $0.message.hasPrefix("lost redis") }, "the registry's shard was not touched")
                }
                await streamer.close()
                #expect(try await onB.waitFor(type: "stream_ended", stream: id)["reason"] == .string("closed"))
                // The old primary comes back as its successor's replica, for the tests after this one.
                try await victim.start()
                try await cluster.waitUntilSettled()
            }
        }
    }
}
