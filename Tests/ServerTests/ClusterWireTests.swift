@testable import FramepipeServer
@testable import Cluster
import Foundation
@testable import WireProtocol
import NIOCore
@testable import Pipeline
import PropertyBased
import RESP
import Testing

/// The messages nodes exchange through Redis, as pure values.
@Suite("Cluster wire formats")
struct ClusterWireTests {
    @Test func frameEnvelopeRoundTripsWithTheJPEGUntouched() throws {
        let jpeg = TestFrames.jpeg(1)
        for timestamp in [nil, Int64(1_732_500_000_123), Int64(-5)] {
            let envelope = ClusterFrameEnvelope(node: "node-a", stream: "P-DHE-001", seq: 913, timestamp: timestamp,
                                                receivedAt: 1_732_500_000_456, jpeg: jpeg)
            let decoded = try ClusterFrameEnvelope(decoding: envelope.encode())
            #expect(decoded == envelope)
        }
    }

    /// A node not yet upgraded sends version 1, without `received_at`: its
    /// frames are still relayed (and count as received on arrival).
    @Test func aVersion1EnvelopeIsStillRead() throws {
        var buffer = ByteBuffer(bytes: [0x46, 0x50, 0x46, 0x01, 1, 0x61, 1, 0x62])
        buffer.writeInteger(UInt64(7))
        buffer.writeInteger(UInt8(1))
        buffer.writeInteger(Int64(1_732_500_000_123))
        buffer.writeString("JPEG")
        let decoded = try ClusterFrameEnvelope(decoding: buffer)
        #expect(decoded == ClusterFrameEnvelope(node: "a", stream: "b", seq: 7, timestamp: 1_732_500_000_123, receivedAt: nil,
                                                jpeg: ByteBuffer(string: "JPEG")))
    }

    @Test(arguments: [
        ("", "bad magic"),
        ("FPF\u{03}", "bad magic"),  // a future version is not guessed at
        ("FPF\u{01}\u{00}", "bad node id"),
        ("FPF\u{01}\u{01}a\u{00}", "bad stream id"),
        ("FPF\u{01}\u{01}a\u{01}b\u{00}\u{00}", "truncated header"),
        // Version 2 without its received_at, or with none.
        ("FPF\u{02}\u{01}a\u{01}b" + String(repeating: "\u{00}", count: 8) + "\u{00}" + String(repeating: "\u{00}", count: 8) + "\u{00}", "truncated header"),
        ("FPF\u{02}\u{01}a\u{01}b" + String(repeating: "\u{00}", count: 8) + "\u{00}" + String(repeating: "\u{00}", count: 16) + "J", "bad received_at"),
        // Found by fuzz-cluster-wire: a timestamp beside a "no timestamp" flag, and a flag that is neither.
        ("FPF\u{01}\u{01}a\u{01}b" + String(repeating: "\u{00}", count: 8) + "\u{00}" + String(repeating: "\u{00}", count: 7) + "\u{07}J", "bad timestamp flag"),
        ("FPF\u{01}\u{01}a\u{01}b" + String(repeating: "\u{00}", count: 8) + "\u{02}" + String(repeating: "\u{00}", count: 8) + "J", "bad timestamp flag"),
    ])
    func malformedEnvelopesAreRefusedWithAReason(bytes: String, reason: String) {
        #expect { try ClusterFrameEnvelope(decoding: ByteBuffer(string: bytes)) } throws: { "\($0)".contains(reason) }
    }

    @Test func anEnvelopeWithoutAJPEGIsRefused() {
        var buffer = ClusterFrameEnvelope(node: "n", stream: "s", seq: 1, timestamp: nil, receivedAt: 1, jpeg: ByteBuffer(string: "x")).encode()
        buffer.moveWriterIndex(to: buffer.writerIndex - 1)
        #expect { try ClusterFrameEnvelope(decoding: buffer) } throws: { "\($0)".contains("no JPEG") }
    }

    @Test func truncatedOrMutatedEnvelopesNeverCrash() async {
        let whole = ClusterFrameEnvelope(node: "node-a", stream: "cam", seq: 7, timestamp: 1, receivedAt: 2, jpeg: TestFrames.jpeg(0)).encode()
        let bytes = Array(whole.readableBytesView)
        await propertyCheck(count: 500, input: Gen<Int>.int(in: 0...bytes.count), Gen<Int>.int(in: 0...40), Gen<UInt8>.value(in: 0...255)) { cut, position, value in
            var mutated = Array(bytes[..<cut])
            if position < mutated.count { mutated[position] = value }
            _ = try? ClusterFrameEnvelope(decoding: ByteBuffer(bytes: mutated))
        }
    }

    @Test func controlEventsRoundTrip() throws {
        for event in [ClusterEvent.claimed(stream: "a", node: "n1", started: true), .claimed(stream: "b.c", node: "n_2", started: false),
                      .started(stream: "a", node: "n1"), .ended(stream: "a", node: "n1", reason: .nodeLost),
                      .ended(stream: "a", node: "n1", reason: .shutdown), .replayWanted(stream: "bed-9", node: "n-b"),
                      .clock(stream: "bed-9", node: "n-a", offsetMs: -30_000), .clock(stream: "bed-9", node: "n-a", offsetMs: 12),
                      .demand(stream: "bed-9", node: "n-b", watched: true, width: 320, height: 180, fps: 7.5),
                      .demand(stream: "bed-9", node: "n-b", watched: false, width: nil, height: nil, fps: nil)] {
            #expect(try ClusterEvent(json: event.json) == event)
        }
    }

    @Test(arguments: [
        ("nope", "not JSON"),
        (#"{"stream":"a","node":"n"}"#, "no \"type\""),
        (#"{"type":"claimed","stream":"a b","node":"n","started":true}"#, "bad or missing \"stream\""),
        (#"{"type":"started","stream":"a"}"#, "bad or missing \"node\""),
        (#"{"type":"claimed","stream":"a","node":"n","started":"yes"}"#, "\"started\" must be true or false"),
        (#"{"type":"ended","stream":"a","node":"n","reason":"bored"}"#, "unknown reason"),
        (#"{"type":"exploded","stream":"a","node":"n"}"#, "unknown type"),
        (#"{"type":"clock","stream":"a","node":"n","offset_ms":1.5}"#, "\"offset_ms\" must be whole milliseconds"),
        (#"{"type":"demand","stream":"a","node":"n","watched":"yes"}"#, "\"watched\" must be true or false"),
        (#"{"type":"demand","stream":"a","node":"n","watched":true,"width":-1}"#, "\"width\" must be null or whole pixels"),
    ])
    func badControlMessagesSayWhatIsWrong(text: String, reason: String) {
        #expect { try ClusterEvent(json: text) } throws: { "\($0)".contains(reason) }
    }

    /// On a Redis Cluster a stream has four frame channels with hash tags of
    /// their own, the first as version-2 nodes name it; on one Redis, one.
    /// Each reads back as its stream, and nothing else does.
    @Test func everyFrameChannelOfAStreamNamesIt() {
        let cluster = ClusterKeys.onRedisCluster, one = ClusterKeys.onOneRedis
        #expect(cluster.frameChannels("bed-1") == ["framepipe:frames:{bed-1}", "framepipe:frames:{bed-1|1}",
                                                   "framepipe:frames:{bed-1|2}", "framepipe:frames:{bed-1|3}"])
        #expect(one.frameChannels("bed-1") == ["framepipe:frames:bed-1"])
        for id in ["bed-1", "a", "x.y_z-9", String(repeating: "w", count: 64)] {
            for channel in cluster.frameChannels(id) { #expect(cluster.stream(ofFrameChannel: channel) == id, "\(channel)") }
            #expect(one.stream(ofFrameChannel: one.frames(id)) == id)
        }
        for bad in ["framepipe:frames:{bed-1|4}", "framepipe:frames:{bed-1|0}", "framepipe:frames:{bed-1|01}", "framepipe:frames:{bed-1|}",
                    "framepipe:frames:bed-1", "framepipe:frames:{bed-1", "framepipe:replay:{bed-1}"] {
            #expect(cluster.stream(ofFrameChannel: bad) == nil, "\(bad)")
        }
    }

    /// A stream is published on the candidate whose shard carries fewest of
    /// the node's streams, keeps it, and frees it when it ends; where the
    /// shards are not known yet, the first candidate, placed later.
    @Test func streamsArePlacedOnTheLeastUsedShard() {
        // Shards by the candidate's last character: "…0" and "…3" on s0, "…1" on s1, "…2" on s2.
        let shardOf: (String) -> String? = { channel in ["0": "s0", "1": "s1", "2": "s2", "3": "s0"][String(channel.last!)] }
        let candidates = { (id: String) in (0...3).map { "\(id)/\($0)" } }
        var placement = FramePlacement()
        let first = (1...6).map { placement.channel(for: "cam-\($0)", among: candidates("cam-\($0)"), shardOf: shardOf) }
        #expect(first.map(\.channel) == ["cam-1/0", "cam-2/1", "cam-3/2", "cam-4/0", "cam-5/1", "cam-6/2"], "even, and the first candidate on a tie")
        #expect(first.allSatisfy { $0.placedNow })
        #expect(placement.streamsPerShard(shardOf: shardOf) == ["s0": 2, "s1": 2, "s2": 2])
        #expect(placement.channel(for: "cam-2", among: candidates("cam-2"), shardOf: shardOf) == ("cam-2/1", false), "kept")
        // Only s0 and s2 among cam-7's candidates: s2 has fewer once cam-3 and cam-6 end.
        placement.forget("cam-3")
        placement.forget("cam-6")
        #expect(placement.channel(for: "cam-7", among: ["cam-7/0", "cam-7/2"], shardOf: shardOf).channel == "cam-7/2")
        // No shard known: the first candidate, and nothing remembered.
        let unknown = placement.channel(for: "cam-8", among: ["x", "y"], shardOf: { _ in nil })
        #expect(unknown == ("x", false))
        #expect(placement.chosenChannel(of: "cam-8") == nil)
    }

    @Test func nodesListenOnEveryChoiceOnlyWhenAllSayVersion3() {
        #expect(ClusterKeys.everyNode([.simpleString("3"), .simpleString("3")], understands: 3))
        #expect(!ClusterKeys.everyNode([.simpleString("3"), .simpleString("2")], understands: 3))
        #expect(ClusterKeys.everyNode([.simpleString("3"), .simpleString("2")], understands: 2))
        #expect(!ClusterKeys.everyNode([.simpleString("3"), .simpleString("")], understands: 2), "a key without a version is an old node's")
    }

    @Test func registryEntriesAreReadStrictly() {
        #expect(ClusterKeys.parseEntry("node-a\t1")! == ("node-a", true))
        #expect(ClusterKeys.parseEntry("node-a\t0")! == ("node-a", false))
        for bad in ["node-a", "\t1", "node-a\t2", "a\t1\t1"] { #expect(ClusterKeys.parseEntry(bad) == nil, "\(bad)") }
    }

    @Test func serveRefusesBadClusterSettingsWithTheReason() async throws {
        for (arguments, reason) in [
            (["--redis", "http://x"], "must start with redis://, rediss://, redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster://"),
            (["--redis", "redis://:pw@host:99999"], "port must be 1-65535"),
            (["--redis", "redis://h", "--node-id", "a b"], "node id must be 1-64 characters"),
            (["--node-id", "a"], "--node-id, --node-timeout, --redis-ca and --ready-without-redis need --redis"),
            (["--redis", "redis://h", "--redis-ca", "/etc/hostname"], "--redis-ca needs a rediss:// URL"),
            (["--redis", "rediss://h", "--redis-ca", "/nonexistent.pem"], "cannot use redis CA file /nonexistent.pem"),
            (["--redis", "redis://h", "--node-timeout", "0.1"], "node-timeout must be at least 0.3 seconds"),
        ] {
            let result = try await runFramepipe(["serve", "--port", "0"] + arguments)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.err.contains(reason), "\(arguments): \(result.err)")
            #expect(!result.err.contains("pw@"), "a password never reaches the output")
        }
    }
}
