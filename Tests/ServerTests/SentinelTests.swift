@testable import FramepipeServer
import Foundation
@testable import Pipeline
@testable import RESP
import TestFixtures
import Testing

/// Nodes on a replicated Redis found through Sentinel (Debian's
/// redis-server and redis-sentinel: a master, a replica, three sentinels),
/// whose master is killed mid-stream.
extension OneAtATime {
    @Suite("Redis Sentinel", .serialized, .timeLimit(.minutes(2)))
    struct SentinelTests {
        @Test func nodesFollowAFailoverAndNoStreamEnds() async throws {
            let group = try await RedisSentinelGroup()
            let url = try RedisURL(group.url)
            func node(_ id: String) -> RelayConfiguration {
                // The failover (about 2 s here) is shorter than the node timeout.
                .test { $0.cluster = ClusterSettings(redis: url, nodeID: id, nodeTimeout: .seconds(15)) }
            }
            try await withJoinedNodes(node("node-a"), node("node-b")) { a, b in
                #expect(try await a.api("/healthz")["cluster"]?["master"] == .string("127.0.0.1:\(group.master.port)"))
                let local = try await a.viewer()
                let remote = try await b.viewer()
                let streamer = try await a.streamer("icu-7")
                try await b.eventually("B subscribed") { try await group.master.command("PUBSUB", "NUMSUB", "framepipe:frames:icu-7").array?[1].integer == 1 }
                var seq = 0
                try await streamer.sendInStep(5, seenBy: local, from: &seq)
                try await remote.waitFor("frame 4 on B") { $0["seq"] == .number(4) }

                group.master.kill9()
                let killed = seq
                // Frames keep coming, each seen on A, until the sentinels have noticed and promoted the replica.
                let giveUp = ContinuousClock.now + .seconds(30)
                repeat { try await streamer.sendInStep(1, seenBy: local, from: &seq) } while try await group.currentMasterPort() != group.replica.port && ContinuousClock.now < giveUp
                try await local.waitFor("every frame on A") { $0["seq"] == .number(Double(seq - 1)) }
                #expect(local.json(type: "frame").count == seq, "the local viewer got every frame throughout the failover")
                try await b.eventually("the replica promoted", timeout: .seconds(30)) { try await group.currentMasterPort() == group.replica.port }
                try await a.eventually("A on the new master", timeout: .seconds(30)) {
                    try await a.api("/healthz")["cluster"]?["master"] == .string("127.0.0.1:\(group.replica.port)")
                }
                try await b.waitForBroker(timeout: .seconds(30))
                try await b.eventually("B subscribed on the new master", timeout: .seconds(10)) {
                    try await group.replica.command("PUBSUB", "NUMSUB", "framepipe:frames:icu-7").array?[1].integer == 1
                }
                let beforeResume = remote.json(type: "frame").count
                try await streamer.sendInStep(5, seenBy: local, from: &seq)
                try await remote.waitFor("a frame after the failover on B") { $0["seq"] == .number(Double(seq - 1)) }
                #expect(remote.json(type: "frame").count > beforeResume)
                #expect((remote.json(type: "frame").last?["seq"]?.numberValue ?? 0) > Double(killed))
                #expect(local.json(type: "stream_ended").isEmpty && remote.json(type: "stream_ended").isEmpty,
                        "the failover was shorter than the node timeout")
                #expect(a.log.contains("redis is back; cluster delivery resumes", ["master": "127.0.0.1:\(group.replica.port)"]))
                #expect(try await group.replica.command("HGET", "framepipe:streams", "icu-7").string == "node-a\t1", "A announced its stream on the new master")
                await streamer.close()
            }
            await group.stop()
        }
    }
}
