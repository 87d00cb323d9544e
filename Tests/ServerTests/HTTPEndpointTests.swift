@testable import RelayCore
@testable import FramepipeServer
import NIOCore
@testable import Pipeline
import Testing

@Suite("HTTP endpoints", .timeLimit(.minutes(1)))
struct HTTPEndpointTests {
    @Test func healthzReportsCounts() async throws {
        try await withRelay { relay in
            _ = try await relay.viewer()
            let health = try await relay.api("/healthz")
            #expect(health == .object([("status", .string("ok")), ("pipeline", .string("standard")),
                                       ("streams", .number(0)), ("viewers", .number(1))]))
        }
    }

    @Test func apiStreamsListsLiveStreamsWithTheirFigures() async throws {
        try await withRelay { relay in
            let viewer = try await relay.viewer()
            let streamer = try await relay.streamer("P-DHE-001")
            // Paced: back-to-back frames may rightly replace each other (latest wins).
            streamer.send(TestFrames.text(0))
            try await viewer.waitFor(type: "frame")
            streamer.send(#"{"type":"frame","frame":"data:image/jpeg;base64,!!!!"}"#)
            streamer.send(TestFrames.text(1))
            try await viewer.waitFor("2 frames") { _ in viewer.json(type: "frame").count == 2 }
            guard case .array(let streams) = try await relay.api("/api/streams"), let s = streams.first else {
                Issue.record("no streams"); return
            }
            #expect(streams.count == 1)
            #expect(s["id"] == .string("P-DHE-001"))
            #expect(s["frames"] == .number(2))
            #expect(s["errors"] == .number(1))
            #expect(s["drops"] == .number(0))
            #expect(s["viewers"] == .number(1))
            #expect(s["pipeline"] == .string("standard"))
            #expect(s["fps"]?.numberValue != nil)
            #expect(s["started"]?.stringValue?.hasSuffix("Z") == true)
        }
    }

    /// `?width=` / `?height=`: the smallest rendition of the stream's ladder
    /// at least that large, made on demand when no viewer had it made; never
    /// cached by a browser or proxy.
    @Test func aSnapshotCanBeAskedForAtASize() async throws {
        try await withRelay { relay in
            let streamer = try await relay.streamer("cam")
            let viewer = try await relay.viewer("format=binary")
            streamer.send(TestFrames.jpeg(0))
            try await viewer.eventually("live") { viewer.binaryFrames.count == 1 }
            // The test pictures are 160×120; the ladder has 1/2 (80×60).
            let small = try await RawHTTP.get(port: relay.port, path: "/api/streams/cam/snapshot.jpg?width=80")
            #expect(small.status == 200)
            #expect(small.headers["x-rendition"] == "1/2")
            #expect(small.headers["cache-control"] == "no-cache, no-store, must-revalidate")
            #expect(small.body.readableBytes < TestFrames.jpeg(0).readableBytes)
            let large = try await RawHTTP.get(port: relay.port, path: "/api/streams/cam/snapshot.jpg?width=81")
            #expect(large.headers["x-rendition"] == "full")
            #expect(large.body == TestFrames.jpeg(0))
            let bad = try await RawHTTP.get(port: relay.port, path: "/api/streams/cam/snapshot.jpg?height=-1")
            #expect(bad.status == 400)
            #expect(bad.text.contains("height must be"))
        }
    }

    @Test func snapshotIsTheLatestFrameOr404WithAReason() async throws {
        try await withRelay { relay in
            let missing = try await RawHTTP.get(port: relay.port, path: "/api/streams/nope/snapshot.jpg")
            #expect(missing.status == 404)
            #expect(try JSONParser.parse(missing.text) == .object([("error", .string("no such stream")), ("stream_id", .string("nope"))]))
            let streamer = try await relay.streamer("cam")
            streamer.send(#"{"type":"ping"}"#)
            try await streamer.waitFor(type: "pong")
            let early = try await RawHTTP.get(port: relay.port, path: "/api/streams/cam/snapshot.jpg")
            #expect(early.status == 404)
            #expect(early.text.contains("stream has no valid frame yet"))
            streamer.send(TestFrames.text(0))
            streamer.send(TestFrames.jpeg(3))
            try await relay.eventually("snapshot of the latest frame") {
                let r = try await RawHTTP.get(port: relay.port, path: "/api/streams/cam/snapshot.jpg")
                return r.status == 200 && r.headers["content-type"] == "image/jpeg" && r.body == TestFrames.jpeg(3)
            }
        }
    }

    @Test func pipelinesShowsTheConfigAndPerStageDrops() async throws {
        try await withRelay { relay in
            let streamer = try await relay.streamer("cam")
            streamer.send(#"{"type":"frame","frame":"data:image/jpeg;base64,!!!!"}"#)
            try await streamer.waitFor(type: "error")
            let pipelines = try await relay.api("/api/pipelines")
            #expect(pipelines["default"] == .string("standard"))
            #expect(pipelines["active"] == .string("standard"))
            guard case .array(let list) = pipelines["pipelines"], case .array(let stages) = list[0]["stages"] else {
                Issue.record("no pipelines"); return
            }
            #expect(list.compactMap { $0["name"]?.stringValue } == ["standard", "passthrough"])
            #expect(stages[0] == .object([("stage", .string("size-limit")), ("maxBytes", .number(200000)), ("drops", .number(0))]))
            #expect(stages[1]["drops"] == .number(1))
            #expect(stages[2]["mode"] == .string("full"))
        }
    }

    @Test func metricsArePrometheusText() async throws {
        try await withRelay { relay in
            let viewer = try await relay.viewer()
            let streamer = try await relay.streamer("cam")
            streamer.send(TestFrames.text(0))
            try await viewer.waitFor(type: "frame")
            streamer.send(TestFrames.text(1))
            try await viewer.waitFor("2 frames") { _ in viewer.json(type: "frame").count == 2 }
            streamer.send(#"{"type":"frame","frame":"nope"}"#)
            try await streamer.waitFor(type: "error")
            // Per-stream and per-viewer gauges appear with the first sampling period's end.
            try await relay.eventually("a sampling period ended") {
                let text = try await RawHTTP.get(port: relay.port, path: "/metrics").text
                return text.contains(#"framepipe_stream_fps{stream="cam"}"#) && text.contains(#"framepipe_viewer_loss_percent{viewer="v-1"}"#)
            }
            let response = try await RawHTTP.get(port: relay.port, path: "/metrics")
            #expect(response.headers["content-type"]?.hasPrefix("text/plain") == true)
            let text = response.text
            for line in [
                "framepipe_frames_received_total 3",
                "framepipe_frames_accepted_total 2",
                "framepipe_frames_delivered_total 2",
                #"framepipe_frames_dropped_total{stage="message",reason="not_data_url"} 1"#,
                #"framepipe_open_connections{kind="viewer"} 1.0"#,
                #"framepipe_open_connections{kind="streamer"} 1.0"#,
                #"framepipe_stream_viewers{stream="cam"} 1.0"#,
            ] {
                #expect(text.contains(line + "\n"), "metrics lack \(line)")
            }
            #expect(text.contains(#"framepipe_stage_duration_seconds_bucket{stage="decode-check""#))
            #expect(text.contains(#"framepipe_viewer_loss_percent{viewer="v-1"} 0.0"#))
            #expect(text.contains(#"framepipe_stream_fps{stream="cam"}"#))
        }
    }

    /// Every single-node metric in docs/protocol.md moves when its event
    /// happens (`framepipe_frames_replaced_total` and
    /// `framepipe_viewer_loss_percent` are driven exactly in ViewerHubTests;
    /// the cluster's in ClusterTests).
    @Test func everyDocumentedMetricMoves() async throws {
        // Pings (every 45 s, answered within 15 s) on a clock the test moves: on real time, a
        // 2 s ping timeout dropped the answering viewer too in a load check. The camera is not
        // timed out while the clock moves.
        let clock = ManualRelayClock()
        let configuration = RelayConfiguration.test {
            $0.clock = clock
            $0.auth = TestTokens.settings
            $0.auditLogPath = "/dev/full"
            $0.idleWarning = .seconds(600); $0.idleTimeout = .seconds(900)
            $0.limits.maxViewersPerToken = 2
        }
        let watcher = try await TestTokens.hs256(.viewer, ["*"])
        let publisher = try await TestTokens.hs256(.streamer, ["*"])
        try await withRelay(configuration) { relay in
            let start = clock.now
            let viewer = try await relay.viewer("token=\(watcher)", answerPings: true)
            let silent = try await relay.viewer("token=\(watcher)")  // never answers a ping: dropped
            let streamer = try await relay.streamer("cam", token: publisher)
            streamer.send(TestFrames.text(0))
            try await viewer.waitFor(type: "frame")
            streamer.send(#"{"type":"frame","frame":"nope"}"#)
            try await streamer.waitFor(type: "error")
            #expect(try await RawHTTP.get(port: relay.port, path: "/ws/viewer", upgrade: true).status == 401)
            #expect(try await RawHTTP.get(port: relay.port, path: "//api/streams").status == 400)
            // Pings at 45 s; the answering viewer's pong is in once its own ping is answered; the silent one is dropped at 60 s.
            try await TimeoutAndReplacementTests.movedAndChecked(clock, to: start.addingTimeInterval(45))
            try await viewer.waitFor(type: "ping")
            try await viewer.barrier()
            try await TimeoutAndReplacementTests.movedAndChecked(clock, to: start.addingTimeInterval(60))
            try await silent.waitUntilFinished()
            try await relay.log.waitFor("viewer removed", ["reason": "ping_timeout"])
            let extra = try await relay.viewer("token=\(watcher)", answerPings: true)
            #expect(try await RawHTTP.get(port: relay.port, path: "/ws/viewer?token=\(watcher)", upgrade: true).status == 429)
            let documented = try String(contentsOf: packageRoot.appendingPathComponent("docs/protocol.md"), encoding: .utf8)
            let single = [
                "framepipe_frames_received_total", "framepipe_frames_accepted_total", "framepipe_frames_dropped_total",
                "framepipe_frames_delivered_total", "framepipe_stage_duration_seconds", "framepipe_stream_fps",
                "framepipe_stream_viewers", "framepipe_viewer_loss_percent", "framepipe_viewer_goodput_bytes_per_second",
                "framepipe_viewer_rtt_seconds", "framepipe_viewer_frame_age_p95_seconds", "framepipe_open_connections",
                "framepipe_viewers_dropped_total", "framepipe_limit_hits_total", "framepipe_auth_refusals_total",
                "framepipe_bad_requests_total", "framepipe_audit_lines_lost_total",
            ]
            // Loss needs replaced frames, which ViewerHubTests drive exactly; on loopback a frame is
            // written within the millisecond it arrived, so its age gauge is present, maybe 0.
            let presentOnly = ["framepipe_viewer_frame_age_p95_seconds"], skipped = ["framepipe_viewer_loss_percent"]
            func moved(_ name: String, in text: String) -> Bool {
                if presentOnly.contains(name) { return text.contains("\(name){viewer=") }
                return text.split(separator: "\n").contains { line in line.hasPrefix(name) && !(line.hasSuffix(" 0") || line.hasSuffix(" 0.0")) }
            }
            // Frames, each seen by the viewer before the next, until a sampling period has
            // counted them (the fps gauge) and read the viewer's link (goodput, RTT).
            var text = ""
            var seq = 1
            let giveUp = ContinuousClock.now + .seconds(20)
            repeat {
                let before = viewer.json(type: "frame").count
                streamer.send(TestFrames.text(seq))
                try await viewer.eventually("frame \(seq)") { viewer.json(type: "frame").count > before }
                // Housekeeping runs when its clock moves; it samples each real second (the link's readings are real).
                try await TimeoutAndReplacementTests.movedAndChecked(clock, to: clock.now.addingTimeInterval(0.1))
                seq += 1
                if seq % 5 == 0 {
                    text = try await RawHTTP.get(port: relay.port, path: "/metrics", headers: ["Authorization": "Bearer \(watcher)"]).text
                }
            } while !single.allSatisfy({ skipped.contains($0) || moved($0, in: text) }) && ContinuousClock.now < giveUp
            for name in single {
                #expect(documented.contains("`\(name)"), "\(name) is not documented")
                if skipped.contains(name) { continue }
                #expect(moved(name, in: text), "\(name) did not move")
            }
            #expect(text.contains(#"framepipe_limit_hits_total{limit="viewers_per_token"} 1"#))
            #expect(text.contains(#"framepipe_bad_requests_total{reason="bad_path"} 1"#))
            await viewer.close(); await extra.close(); await streamer.close()
        }
    }

    @Test func progressLineEveryIntervalPerLiveStream() async throws {
        try await withRelay(.test { $0.progressInterval = .milliseconds(300) }) { relay in
            let streamer = try await relay.streamer("cam")
            for i in 0..<3 { streamer.send(TestFrames.text(i)) }
            try await relay.log.waitFor("stream progress", ["stream_id": "cam", "frames": "3", "viewers": "0"])
        }
    }
}
