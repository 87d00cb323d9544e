@testable import FramepipeServer
import Foundation
import NIOCore
@testable import Pipeline
@testable import RESP
import TestFixtures
import Testing

/// Two or more relays sharing a real redis-server, with real WebSocket
/// streamers and viewers on each.
extension OneAtATime {
    @Suite("Cluster through Redis", .serialized, .timeLimit(.minutes(2)), .sharedRedisCluster)
    struct ClusterTests {
        /// Instant tiles across nodes: B has no frame of A's 1 fps camera
        /// until a viewer there wants it, then asks A for its latest at once.
        @Test(arguments: RedisKind.allCases) func aViewerOnAnotherNodeGetsASlowCamerasLatestFrameAtOnce(on kind: RedisKind) async throws {
            let redis = try await kind.make()
            try await withTwoNodes(redis) { a, b in
                let streamer = try await a.streamer("bed-9")
                streamer.send(TestFrames.text(0))
                try await b.eventually("B knows the stream") { try await b.api("/api/streams").arrayValue?.count == 1 }
                #expect(try await redis.frameSubscribers("bed-9") == 0, "no viewer on B yet: B receives none of its frames")

                let viewer = try await b.viewer()
                #expect(viewer.json.first?["active_streams"] == .array([.string("bed-9")]))
                // The camera sends nothing more until this frame is in, so it can only be
                // the latest one asked of A at once (no time bound needed to prove it).
                let cached = try await viewer.waitFor("the cached frame") { $0["type"] == .string("frame") }
                #expect(cached["cached"] == .bool(true) && cached["seq"] == .number(0) && cached["stream_id"] == .string("bed-9"))
                #expect(viewer.json.firstIndex { $0["type"] == .string("viewer_connected") } == 0)

                streamer.send(TestFrames.text(1))
                let live = try await viewer.waitFor("the next frame") { $0["type"] == .string("frame") && $0["seq"] == .number(1) }
                #expect(live["cached"] == nil)
                // A second viewer on B: B now has the frames itself and replays its own latest.
                let second = try await b.viewer()
                let again = try await second.waitFor("its cached frame") { $0["type"] == .string("frame") }
                #expect(again["cached"] == .bool(true) && again["seq"] == .number(1))
                #expect(viewer.json(type: "frame").count == 2, "the first viewer got no replay twice")
            }
        }

        /// A stage's event on the owner reaches viewers on the other node, in
        /// order with the frames, for late viewers there too, and its API.
        @Test(arguments: RedisKind.allCases) func aFrozenPictureOnNodeAIsToldToViewersOnNodeB(on kind: RedisKind) async throws {
            let redis = try await kind.make()
            // The owner's picture rule counts its relay clock, moved a quarter second per frame seen on B.
            let clock = ManualRelayClock()
            try await withRelay(.node("node-a", redis, nodeTimeout: .seconds(3)) { $0.clock = clock }, pipelinesJSON: StreamHealthTests.pipelines) { a in
                try await withRelay(.node("node-b", redis, nodeTimeout: .seconds(3)), pipelinesJSON: StreamHealthTests.pipelines) { b in
                    try await a.waitForBroker()
                    try await b.waitForBroker()
                    let viewer = try await b.viewer()
                    let streamer = try await a.streamer("bed-4")
                    try await b.eventually("B subscribed") { try await redis.frameSubscribers("bed-4") == 1 }
                    let still = TestPattern.jpeg(width: 320, height: 240, frame: 1)
                    var seq = 0.0
                    func send(_ jpeg: ByteBuffer) async throws {
                        streamer.send(jpeg)
                        let sent = seq
                        seq += 1
                        try await viewer.waitFor("frame \(sent) on B") { $0["type"] == .string("frame") && $0["seq"] == .number(sent) }
                        clock.advance(by: .milliseconds(250))
                    }
                    for _ in 0..<8 { try await send(still) }
                    let frozen = try await viewer.waitFor(type: "stream_health", stream: "bed-4")
                    #expect(frozen["kind"] == .string("picture") && frozen["state"] == .string("frozen") && frozen["since"] != nil)
                    let types = viewer.json.compactMap { $0["type"]?.stringValue }
                    let at = try #require(types.firstIndex(of: "stream_health"))
                    #expect(types[..<at].contains("frame") && types[(at + 1)...].contains("frame"), "in its place among the frames")
                    let seqs = viewer.json.compactMap { $0["type"] == .string("frame") ? $0["seq"]?.numberValue : nil }
                    #expect(seqs == seqs.sorted())

                    let late = try await b.viewer()
                    try await late.waitFor(type: "stream_health", stream: "bed-4")
                    #expect(late.json.firstIndex { $0["type"] == .string("stream_health") } == 1, "right after viewer_connected")
                    let streams = try await b.api("/api/streams")
                    #expect(streams.arrayValue?.first?["health"]?["picture"]?["state"] == .string("frozen"))

                    for i in 0..<4 { try await send(TestPattern.jpeg(width: 320, height: 240, frame: 10 + i)) }
                    try await viewer.waitFor("ok on B") { $0["type"] == .string("stream_health") && $0["state"] == .string("ok") }
                    try await b.eventually("B's API says ok") {
                        try await b.api("/api/streams").arrayValue?.first?["health"]?["picture"]?["state"] == .string("ok")
                    }
                    await streamer.close()
                }
            }
        }

        /// Age from capture on every node: A measures its camera's clock and
        /// tells B, whose viewers get the same `captured_at` as A's.
        @Test(arguments: RedisKind.allCases) func aCamerasCaptureTimeReachesViewersOnAnotherNodeOnTheRelaysClock(on kind: RedisKind) async throws {
            let redis = try await kind.make()
            try await withTwoNodes(redis) { a, b in
                let onB = try await b.viewer()
                let streamer = try await a.streamer("ward-2", query: "flow=credit")
                // The camera's clock is 30 s behind; it answers A's clock ping.
                let ping = try await streamer.waitFor("A's clock ping") { $0["type"] == .string("ping") && $0["server_time"] != nil }
                let serverTime = Int64(try #require(ping["server_time"]?.numberValue))
                streamer.send(#"{"type":"pong","server_time":\#(serverTime),"client_time":\#(Date().millisecondsSince1970 - 30_000)}"#)
                try await a.eventually("A measured the camera's clock") { a.log.all.contains { $0.message == "streamer's clock measured" } }
                streamer.send(TestFrames.text(0, timestamp: Date().millisecondsSince1970 - 30_000))
                try await onB.waitFor(type: "stream_started", stream: "ward-2")
                // Frames until one reaches B with its capture time (B hears A's clock event on the control channel).
                var seq = 1
                try await b.eventually("a frame on B with captured_at", timeout: .seconds(10)) {
                    if onB.json(type: "frame").contains(where: { $0["captured_at"] != nil }) { return true }
                    streamer.send(TestFrames.text(seq, timestamp: Date().millisecondsSince1970 - 30_000))
                    seq += 1
                    return false
                }
                let frame = try #require(onB.json(type: "frame").first { $0["captured_at"] != nil })
                let delay = (frame["received_at"]?.numberValue ?? 0) - (frame["captured_at"]?.numberValue ?? 0)
                #expect(delay >= 0 && delay < 1_000, "capture to receipt \(delay) ms on the relays' clock: the 30 s skew is taken out")
                try await b.eventually("B's /api/streams shows the ingest delay") {
                    try await b.api("/api/streams").arrayValue?.first?["ingest_delay_p95_ms"]?.numberValue != nil
                }
                await streamer.close()
            }
        }

        /// Demand across nodes: a camera on A whose only viewer is on B is
        /// told what B's viewer needs, and that nobody watches once it hides.
        @Test(arguments: RedisKind.allCases) func aCameraIsToldWhatViewersOnAnotherNodeNeed(on kind: RedisKind) async throws {
            let redis = try await kind.make()
            try await withTwoNodes(redis) { a, b in
                let streamer = try await a.streamer("ward-3", query: "flow=credit")
                // Once A has read both nodes' heartbeats, it counts viewers: nobody watches yet.
                try await streamer.waitFor("unwatched", timeout: .seconds(10)) { $0["type"] == .string("demand") && $0["watched"] == .bool(false) }
                streamer.send(TestFrames.text(0))
                // B knows the stream once A's first frame made it start.
                try await b.eventually("B knows ward-3") { try await b.api("/api/streams").arrayValue?.count == 1 }
                let onB = try await b.viewer()
                try await streamer.waitFor("watched from B", timeout: .seconds(10)) { $0["type"] == .string("demand") && $0["watched"] == .bool(true) }
                onB.send(#"{"type":"view","stream_id":"ward-3","width":100,"height":75}"#)
                try await streamer.waitFor("B's tile size") { $0["type"] == .string("demand") && $0["width"] == .number(100) }
                onB.send(#"{"type":"view","stream_id":"ward-3","visible":false}"#)
                try await streamer.eventually("unwatched once B's tile hides") { streamer.json(type: "demand").last?["watched"] == .bool(false) }
                await streamer.close()
            }
        }

        @Test(arguments: RedisKind.allCases) func aStreamOnNodeAReachesViewersOnBothNodesInOrder(on kind: RedisKind) async throws {
            let redis = try await kind.make()
            // Two nodes with a 3 s node timeout: this test is about every frame
            // arriving in order, and an outage misread under load would lose frames.
            try await withTwoNodes(redis) { a, b in
                let onA = try await a.viewer()
                let onB = try await b.viewer()
                let binaryOnB = try await b.viewer("format=binary")
                #expect(try await redis.frameSubscribers("ward-1") == 0)

                let streamer = try await a.streamer("ward-1")
                // B subscribes once it hears of the stream: one subscription for its two viewers.
                try await b.eventually("B subscribed") { try await redis.frameSubscribers("ward-1") == 1 }
                // Paced by the viewers, as in the single-node lifecycle test:
                // a viewer that keeps up must get every frame, while one
                // behind by a frame gets the newer one (latest wins), which a
                // loaded machine caused twice with a fixed 15 ms pace.
                for i in 0..<20 {
                    streamer.send(TestFrames.text(i, timestamp: 1_732_500_000_000 + Int64(i)))
                    for viewer in [onA, onB] {
                        try await viewer.waitFor("frame \(i)") { $0["type"] == .string("frame") && $0["seq"] == .number(Double(i)) }
                    }
                    try await b.eventually("binary frame \(i)") { binaryOnB.binaryFrames.last?.header["seq"] == .number(Double(i)) }
                }
                for viewer in [onA, onB] {
                    try await viewer.waitFor("frame 19") { $0["type"] == .string("frame") && $0["seq"] == .number(19) }
                    let frames = viewer.json(type: "frame")
                    #expect(frames.compactMap { $0["seq"]?.numberValue } == (0..<20).map(Double.init))
                    #expect(frames.compactMap { $0["timestamp"]?.numberValue } == (0..<20).map { 1_732_500_000_000 + Double($0) })
                    #expect(frames[3]["frame"] == .string(TestPattern.dataURL(TestFrames.jpeg(3))))
                    #expect(viewer.json(type: "stream_started").count == 1)
                }
                try await b.eventually("binary frame 19") { binaryOnB.binaryFrames.last?.header["seq"] == .number(19) }
                #expect(binaryOnB.binaryFrames.map { $0.header["seq"]?.numberValue } == (0..<20).map(Double.init))
                #expect(binaryOnB.binaryFrames[5].jpeg == TestFrames.jpeg(5))

                // A viewer joining B later sees A's stream in its first message.
                let late = try await b.viewer()
                #expect(late.json.first?["active_streams"] == .array([.string("ward-1")]))
                let listed = try await b.api("/api/streams")
                #expect(listed.arrayValue?.first?["id"] == .string("ward-1"))
                #expect(listed.arrayValue?.first?["node"] == .string("node-a"))

                await streamer.close()
                for viewer in [onA, onB, late] {
                    #expect(try await viewer.waitFor(type: "stream_ended", stream: "ward-1")["reason"] == .string("closed"))
                }
                // Nobody watches a stream that is gone: B lets go of the channel.
                try await b.eventually("B unsubscribed") { try await redis.frameSubscribers("ward-1") == 0 }
                #expect(try await redis.registrySize() == .integer(0))
            }
        }

        /// On a Redis Cluster every link is TLS: the nodes' commands, frames
        /// and subscriptions to each shard, and the cluster's own bus.
        @Test(arguments: RedisKind.allCases) func nodesTalkToRedisOverTLSWithTheirOwnCA(on kind: RedisKind) async throws {
            let redis: any SharedRedis, ca: String
            switch kind {
            case .oneRedis:
                let server = try await RedisServerProcess(tls: true)
                (redis, ca) = (server, try #require(server.certificateFile))
            case .redisCluster:
                let cluster = try await RedisClusterGroup(tls: true)
                (redis, ca) = (cluster, try #require(cluster.certificateFile))
            }
            func node(_ id: String) -> RelayConfiguration { .node(id, redis) { $0.cluster?.redisCAFile = ca } }
            try await redis.stopped {
                try await withJoinedNodes(node("node-a"), node("node-b")) { a, b in
                    let viewer = try await b.viewer()
                    let streamer = try await a.streamer("secure-1")
                    try await b.eventually("B subscribed") { try await redis.frameSubscribers("secure-1") == 1 }
                    streamer.send(TestFrames.text(0))
                    try await viewer.waitFor(type: "frame", stream: "secure-1")
                    #expect(try await b.api("/healthz")["cluster"]?["redis"] == .string(redis.url.description))
                    #expect(redis.url.description.hasPrefix("rediss"))
                }
            }
        }

        @Test(arguments: RedisKind.allCases) func aNodeSubscribesOnlyWhileAViewerThereWatchesTheStream(on kind: RedisKind) async throws {
            let redis = try await kind.make()
            try await withJoinedNodes(.node("node-a", redis), .node("node-b", redis)) { a, b in
                let streamer = try await a.streamer("cam-7")
                streamer.send(TestFrames.text(0))
                // The barrier: B reconciles its subscriptions in order, each time with
                // what its viewers watch then, so once a later viewer's stream (cam-8)
                // is subscribed, any subscription an earlier change called for is too.
                func barrier(_ id: String) async throws {
                    try await b.eventually("B's subscriptions reconciled") { try await redis.frameSubscribers(id) == 1 }
                }
                let marker = try await a.streamer("cam-8")
                marker.send(TestFrames.text(0))
                let otherStream = try await b.viewer("streams=cam-9")
                let markerViewer = try await b.viewer("streams=cam-8")
                try await barrier("cam-8")
                #expect(try await redis.frameSubscribers("cam-7") == 0)
                let first = try await b.viewer("streams=cam-7")
                let second = try await b.viewer()
                try await b.eventually("B subscribed") { try await redis.frameSubscribers("cam-7") == 1 }
                streamer.send(TestFrames.text(1))
                try await first.waitFor(type: "frame", stream: "cam-7")
                try await second.waitFor(type: "frame", stream: "cam-7")
                #expect(otherStream.json(type: "frame").isEmpty)
                let firstID = try #require(first.json(type: "viewer_connected").first?["viewer_id"]?.stringValue)
                await first.close()
                try await b.log.waitFor("viewer removed", ["viewer_id": firstID])
                // A stream that starts after the removal: `second`, which watches all, subscribes B to it.
                let laterMarker = try await a.streamer("cam-6")
                laterMarker.send(TestFrames.text(0))
                try await barrier("cam-6")
                #expect(try await redis.frameSubscribers("cam-7") == 1)  // `second` still watches
                await second.close()
                await markerViewer.close()
                try await b.eventually("B unsubscribed") { try await redis.frameSubscribers("cam-7") == 0 }
                // Only node B's subscriber ever subscribed: A serves the stream itself.
                #expect(try await redis.frameSubscribers("cam-9") == 0)
            }
        }

        @Test(arguments: RedisKind.allCases) func theSameStreamReconnectingToTheOtherNodeReplacesTheFirstClusterWide(on kind: RedisKind) async throws {
            let redis = try await kind.make()
            try await withJoinedNodes(.node("node-a", redis), .node("node-b", redis)) { a, b in
                let onA = try await a.viewer()
                let onB = try await b.viewer()
                let first = try await a.streamer("bed-3")
                try await b.eventually("B subscribed") { try await redis.frameSubscribers("bed-3") == 1 }
                for i in 0..<3 {
                    first.send(TestFrames.text(i))
                    try await onB.waitFor("frame \(i) on B") { $0["type"] == .string("frame") && $0["seq"] == .number(Double(i)) }
                }
                let second = try await b.streamer("bed-3")
                try await first.waitUntilFinished()
                #expect(a.log.contains("stream taken over by another node, closing the connection here", ["stream_id": "bed-3"]))
                // A now relays B's frames to its viewer: it subscribes.
                try await a.eventually("A subscribed") { try await redis.frameSubscribers("bed-3") == 1 }
                for i in 3..<6 {
                    second.send(TestFrames.text(i))
                    try await onA.waitFor("frame \(i) on A") { $0["type"] == .string("frame") && $0["seq"] == .number(Double(i)) }
                }
                for viewer in [onA, onB] {
                    try await viewer.waitFor("3 frames from B") { $0["type"] == .string("frame") && $0["seq"] == .number(5) }
                    let seqs = viewer.json(type: "frame").compactMap { $0["seq"]?.numberValue }
                    #expect(seqs == seqs.sorted() && Set(seqs).count == seqs.count, "seq never goes back: \(seqs)")
                    #expect(viewer.json(type: "stream_ended").isEmpty)
                    #expect(viewer.json(type: "stream_started").count == 1)
                }
                #expect(try await a.api("/api/streams").arrayValue?.first?["node"] == .string("node-b"))
                #expect(try await redis.registryEntry("bed-3") == "node-b\t1")
                await second.close()
                for viewer in [onA, onB] {
                    #expect(try await viewer.waitFor(type: "stream_ended", stream: "bed-3")["reason"] == .string("closed"))
                }
            }
        }

        @Test(arguments: RedisKind.allCases) func aSlowViewerOnTheReceivingNodeGetsTheLowRenditionMadeThere(on kind: RedisKind) async throws {
            let redis = try await kind.make()
            try await withJoinedNodes(.node("node-a", redis), .node("node-b", redis)) { a, b in
                let low = try await b.viewer("quality=low&format=binary")
                let full = try await a.viewer("format=binary")
                let streamer = try await a.streamer("cam")
                try await b.eventually("B subscribed") { try await redis.frameSubscribers("cam") == 1 }
                streamer.send(TestFrames.text(0))
                try await b.eventually("a low frame") { !low.binaryFrames.isEmpty }
                try await a.eventually("a full frame") { !full.binaryFrames.isEmpty }
                let frame = low.binaryFrames[0]
                #expect(frame.header["quality"] == .string("low"))
                #expect(frame.jpeg.readableBytes < TestFrames.jpeg(0).readableBytes)
                #expect(frame.jpeg.getBytes(at: frame.jpeg.readerIndex, length: 2) == [0xFF, 0xD8])
                // A's own viewer wants full frames, so A made no low rendition; B made it from the full frame it received.
                #expect(full.binaryFrames[0].header["quality"] == .string("full"))
                #expect(full.binaryFrames[0].jpeg == TestFrames.jpeg(0))
                let metrics = try await RawHTTP.get(port: b.port, path: "/metrics").text
                #expect(metrics.contains(#"framepipe_stage_duration_seconds_count{stage="downscale"} 1"#), "B ran downscale once")
                #expect(!metrics.contains(#"stage="decode-check""#), "B did not validate again what A had validated")
            }
        }

        @Test(arguments: RedisKind.allCases) func nodeShutdownEndsItsStreamsWithShutdownOnOtherNodes(on kind: RedisKind) async throws {
            let redis = try await kind.make()
            let a = try ServeProcess(["--redis", redis.urlString, "--node-id", "node-a", "--node-timeout", "1"])
            let aPort = try await a.port()
            let relayA = RelayHandle(port: aPort, log: CapturedLog())
            try await relayA.waitForBroker()
            try await withRelay(.node("node-b", redis)) { b in
                try await b.waitForBroker()
                let viewer = try await b.viewer()
                let streamer = try await relayA.streamer("ward-2")
                streamer.send(TestFrames.text(0))
                try await viewer.waitFor(type: "stream_started", stream: "ward-2")
                a.process.interrupt()
                #expect(try await a.waitForExit() == 0)
                #expect(try await viewer.waitFor(type: "stream_ended", stream: "ward-2")["reason"] == .string("shutdown"))
                #expect(try await !redis.nodeKeyExists("node-a"))
            }
        }

        @Test(arguments: RedisKind.allCases) func aNodeKilledWithoutGoodbyeHasItsStreamsEndedAsNodeLostWithinTheTimeout(on kind: RedisKind) async throws {
            let redis = try await kind.make()
            let a = try ServeProcess(["--redis", redis.urlString, "--node-id", "node-a", "--node-timeout", "1"])
            let aPort = try await a.port()
            let relayA = RelayHandle(port: aPort, log: CapturedLog())
            try await relayA.waitForBroker()
            try await withRelay(.node("node-b", redis)) { b in
                try await b.waitForBroker()
                let viewer = try await b.viewer()
                let streamer = try await relayA.streamer("ward-3")
                streamer.send(TestFrames.text(0))
                try await viewer.waitFor(type: "frame", stream: "ward-3")
                kill(a.process.processIdentifier, SIGKILL)  // no goodbye, no cleanup
                let killedAt = ContinuousClock.now
                // Bound: the key's TTL (1 s) plus one heartbeat interval (1/3 s) of the survivor.
                let ended = try await viewer.waitFor(type: "stream_ended", stream: "ward-3", timeout: .seconds(4))
                let took = ContinuousClock.now - killedAt
                #expect(ended["reason"] == .string("node_lost"))
                #expect(took < .milliseconds(1334 + 500), "ended after \(took)")
                #expect(b.log.contains("node lost: no heartbeat within the node timeout, ending its streams", ["lost_node": "node-a"]))
                #expect(try await redis.registrySize() == .integer(0))
                // A new viewer does not see the lost stream.
                #expect(try await b.viewer().json.first?["active_streams"] == .array([]))
            }
        }

        @Test(arguments: RedisKind.allCases) func aRedisOutageNeverStopsLocalDeliveryAndCrossNodeDeliveryResumes(on kind: RedisKind) async throws {
            let redis = try await kind.make()
            try await redis.startedAgain(after: {
                try await withJoinedNodes(.node("node-a", redis, nodeTimeout: .seconds(10)), .node("node-b", redis, nodeTimeout: .seconds(10)) { $0.readyWithoutRedis = true }) { a, b in
                    #expect(try await RawHTTP.get(port: a.port, path: "/readyz").status == 200)
                    let local = try await a.viewer()
                    let remote = try await b.viewer()
                    let streamer = try await a.streamer("icu-1")
                    try await b.eventually("B subscribed") { try await redis.frameSubscribers("icu-1") == 1 }
                    var seq = 0
                    try await streamer.sendInStep(5, seenBy: local, from: &seq)
                    try await remote.waitFor("frame 4 on B") { $0["seq"] == .number(4) }

                    await redis.stop()
                    try await a.waitForBroker("down")
                    let beforeOutage = local.json(type: "frame").count
                    try await streamer.sendInStep(60, seenBy: local, from: &seq)  // with Redis gone
                    try await local.waitFor("frame \(seq - 1) on A") { $0["seq"] == .number(Double(seq - 1)) }
                    #expect(local.json(type: "frame").count - beforeOutage == 60, "local viewer got every frame during the outage")
                    #expect(try await a.api("/healthz")["status"] == .string("degraded"))
                    // Alive, but not ready: a load balancer sends new clients to a node that has Redis.
                    let notReady = try await RawHTTP.get(port: a.port, path: "/readyz")
                    let reason = try JSONParser.parse(notReady.text)
                    #expect(notReady.status == 503 && reason["state"] == .string("redis_unreachable"))
                    #expect(reason["reason"]?.stringValue?.hasPrefix("Redis (\(redis.url)) unreachable since") == true)
                    try await b.waitForBroker("down")
                    #expect(try await RawHTTP.get(port: b.port, path: "/readyz").status == 200, "--ready-without-redis")
                    let metrics = try await RawHTTP.get(port: a.port, path: "/metrics").text
                    #expect(metrics.contains("framepipe_cluster_broker_up 0"))
                    #expect(metrics.contains(#"framepipe_cluster_frames_not_published_total{reason="broker_down"}"#))

                    try await redis.start()
                    try await a.waitForBroker(timeout: .seconds(15))
                    try await b.waitForBroker(timeout: .seconds(15))
                    #expect(try await RawHTTP.get(port: a.port, path: "/readyz").status == 200)
                    try await b.eventually("B subscribed again") { try await redis.frameSubscribers("icu-1") == 1 }
                    try await streamer.sendInStep(5, seenBy: local, from: &seq)
                    try await remote.waitFor("a frame after the outage on B") { $0["seq"] == .number(Double(seq - 1)) }
                    #expect(remote.json(type: "stream_ended").isEmpty, "the outage was shorter than the node timeout")
                    #expect(try await redis.registryEntry("icu-1") == "node-a\t1", "A announced its stream again")
                    // One line for the outage, not one per retry.
                    #expect(a.log.all.filter { $0.message.hasPrefix("lost redis") }.count == 1)
                    #expect(a.log.contains("redis is back; cluster delivery resumes"))
                }
            })
        }

        @Test(arguments: RedisKind.allCases) func anOutageLongerThanTheNodeTimeoutEndsRemoteStreamsUntilRedisReturns(on kind: RedisKind) async throws {
            let redis = try await kind.make()
            try await redis.startedAgain(after: {
                try await withJoinedNodes(.node("node-a", redis), .node("node-b", redis)) { a, b in
                    let remote = try await b.viewer()
                    let streamer = try await a.streamer("icu-2")
                    try await b.eventually("B subscribed") { try await redis.frameSubscribers("icu-2") == 1 }
                    streamer.send(TestFrames.text(0))
                    try await remote.waitFor(type: "frame", stream: "icu-2")
                    await redis.stop()
                    // Nothing says A's stream is still live: after the node timeout (1 s) B ends it.
                    #expect(try await remote.waitFor(type: "stream_ended", stream: "icu-2", timeout: .seconds(3))["reason"] == .string("node_lost"))
                    // Logged once the viewers were told.
                    try await b.log.waitFor("redis away longer than the node timeout: other nodes' streams ended here")
                    try await redis.start()
                    try await a.waitForBroker(timeout: .seconds(15))
                    try await b.waitForBroker(timeout: .seconds(15))
                    // A re-announces; B's viewer hears the stream start again and gets frames.
                    try await remote.waitFor("stream_started again") { _ in remote.json(type: "stream_started").count == 2 }
                    try await b.eventually("B subscribed again") { try await redis.frameSubscribers("icu-2") == 1 }
                    streamer.send(TestFrames.text(1))
                    try await remote.waitFor("a frame after the outage") { $0["type"] == .string("frame") && $0["seq"] == .number(1) }
                }
            })
        }

        /// Redis closes a subscriber that falls behind (its pub/sub output
        /// buffer limit). On one Redis that is the node's link: it reconnects
        /// and resubscribes. On a Redis Cluster it is one shard's subscriber
        /// connection: only that shard's channels are subscribed again, and
        /// the node's link stays up.
        @Test(arguments: RedisKind.allCases) func aSubscriberRedisClosesForFallingBehindReconnectsAndResubscribes(on kind: RedisKind) async throws {
            let redis = try await kind.make()
            let channel = redis.keys.frames("cam")
            func limit(_ value: String) async throws {
                _ = try await redis.command(onKey: channel, ["CONFIG", "SET", "client-output-buffer-limit", "pubsub \(value)"])
            }
            try await withJoinedNodes(.node("node-a", redis), .node("node-b", redis)) { a, b in
                let viewer = try await b.viewer()
                let streamer = try await a.streamer("cam")
                try await b.eventually("B subscribed") { try await redis.frameSubscribers("cam") == 1 }
                // A pub/sub output buffer limit below one frame: Redis closes B's
                // subscriber at the next frame, as it does a subscriber that fell behind.
                // (Redis counts only what overflows a client's 16 KB reply buffer, so the frame is a large one.)
                try await limit("1024 0 0")
                do {
                    let large = TestPattern.jpeg(width: 640, height: 480, frame: 0, quality: 85)
                    #expect((20_000..<200_000).contains(large.readableBytes), "\(large.readableBytes) bytes")
                    streamer.send(large)
                    switch kind {
                    case .oneRedis: try await b.log.waitFor("lost redis; local viewers keep their local streams, reconnecting")
                    case .redisCluster: try await b.log.waitFor("lost the subscriber connection to a redis shard; subscribing its channels again")
                    }
                } catch {
                    try await limit("32mb 8mb 60")
                    throw error
                }
                try await limit("32mb 8mb 60")
                try await b.waitForBroker()
                try await b.eventually("B subscribed again") { try await redis.frameSubscribers("cam") == 1 }
                streamer.send(TestFrames.text(1))
                try await viewer.waitFor("a frame after the reconnect") { $0["type"] == .string("frame") && $0["seq"] == .number(1) }
                #expect(viewer.json(type: "stream_ended").isEmpty)
                if kind == .redisCluster {
                    #expect(!b.log.contains("lost redis; local viewers keep their local streams, reconnecting"), "only the shard's subscriber was lost")
                }
            }
        }

        @Test(arguments: RedisKind.allCases) func aTokenRevokedThroughRedisClosesItsSocketsOnEveryNodeWithinASecond(on kind: RedisKind) async throws {
            let redis = try await kind.make()
            let token = try await TestTokens.hs256(.viewer, ["*"])
            let authed: (inout RelayConfiguration) -> Void = { $0.auth = TestTokens.settings }
            try await withJoinedNodes(.node("node-a", redis, authed), .node("node-b", redis, authed)) { a, b in
                let onA = try await a.viewer("token=\(token)")
                let onB = try await b.viewer("token=\(token)")
                let jti = TestTokens.claim("jti", of: token)!.stringValue!
                let at = Date()
                let revoke = try await runFramepipe(["revoke", "--redis", redis.urlString, "--jti", jti])
                #expect(revoke.out == "revoked token \(jti) in the cluster (2 node(s) listening)\n", "\(revoke.err)")
                for viewer in [onA, onB] {
                    try await viewer.waitUntilFinished(timeout: .seconds(2))
                    #expect(Date().timeIntervalSince(at) < 1.0)
                    #expect(viewer.closeFrame?.code == 4003)
                }
                // A node that joins later reads the revocation from Redis.
                try await withRelay(.node("node-c", redis, authed)) { c in
                    try await c.waitForBroker()
                    try await c.log.waitFor("cluster revocations loaded")
                    #expect(try await RawHTTP.get(port: c.port, path: "/ws/viewer?token=\(token)", upgrade: true).status == 401)
                }
            }
        }

        @Test(arguments: RedisKind.allCases) func aCameraIsPulledByOneNodeAndByAnotherWhenThatNodeDies(on kind: RedisKind) async throws {
            let redis = try await kind.make()
            let camera = FakeIPCamera()
            try await camera.start()
            defer { Task { await camera.stop() } }
            let file = try TemporaryFile("pipelines.json")
            defer { file.remove() }
            try PulledSourceTests.pipelines(sources: [PulledSourceTests.source("bed-4", camera.mjpegURL)])
                .write(toFile: file.path, atomically: true, encoding: .utf8)
            let a = try ServeProcess(["--redis", redis.urlString, "--node-id", "node-a", "--node-timeout", "1", "--config", file.path])
            let relayA = RelayHandle(port: try await a.port(), log: CapturedLog())
            try await relayA.waitForBroker()
            // Node A is alone: it takes the camera.
            try await camera.waitUntil("node A streaming") { $0.streaming.count == 1 }
            try await withRelay(.node("node-b", redis), pipelinesFile: file.path) { b in
                try await b.waitForBroker()
                let viewer = try await b.viewer()
                camera.send(TestFrames.jpeg(0))
                try await viewer.waitFor(type: "stream_started", stream: "bed-4")
                // B has asked for the camera and heard that A pulls it: the barrier after which a second pull would show.
                try await b.eventually("B standing by") {
                    let row = try await PulledSourceTests.streamRow(b, "bed-4")
                    return row?["source"]?["state"] == .string("standby") && row?["source"]?["node"] == .string("node-a")
                }
                #expect(camera.requests.count == 1 && camera.mostAtOnce == 1, "pulled once in the cluster")
                #expect(try await redis.sourceHolder("bed-4") == "node-a")

                kill(a.process.processIdentifier, SIGKILL)  // no goodbye: its lease runs out
                #expect(try await viewer.waitFor(type: "stream_ended", stream: "bed-4")["reason"] == .string("node_lost"))
                try await camera.waitUntil("node B streaming") { $0.streaming.count == 1 && $0.requests.count == 2 }
                camera.send(TestFrames.jpeg(1))
                try await viewer.eventually("the stream back, pulled by B") {
                    viewer.json.filter { $0["type"] == .string("stream_started") }.count == 2
                }
                #expect(try await PulledSourceTests.streamRow(b, "bed-4")?["source"]?["state"] == .string("pulling"))
                #expect(camera.mostAtOnce == 1)
            }
        }
    }
}
