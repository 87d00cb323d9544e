import FramepipeServer
import NIOCore
import Pipeline
import Testing

@Suite("Timeouts, pings and replacement", .timeLimit(.minutes(1)))
struct TimeoutAndReplacementTests {
    @Test func idleStreamIsWarnedAndPingedThenClosedWithTimeout() async throws {
        let config = RelayConfiguration.test { $0.idleWarning = .milliseconds(300); $0.idleTimeout = .milliseconds(800) }
        try await withRelay(config) { relay in
            let viewer = try await relay.viewer()
            let streamer = try await relay.streamer("cam")
            // Taken before the send, so a slow delivery to the viewer cannot shorten the measured wait.
            let silentSince = ContinuousClock.now
            streamer.send(TestFrames.text(0))
            try await viewer.waitFor(type: "frame", stream: "cam")
            // The idle ping is the bare one; the relay's clock pings carry its time.
            try await streamer.waitFor("the idle ping") { $0["type"] == .string("ping") && $0["server_time"] == nil }
            #expect(relay.log.contains("stream idle, pinging it", ["stream_id": "cam"]))
            #expect(viewer.json(type: "stream_ended").isEmpty, "a warning does not end the stream")
            let ended = try await viewer.waitFor(type: "stream_ended", stream: "cam")
            let waited = ContinuousClock.now - silentSince
            #expect(ended["reason"] == .string("timeout"))
            #expect(waited >= .milliseconds(750) && waited < .seconds(3), "closed after \(waited)")
            try await streamer.waitUntilFinished()
            #expect(relay.log.contains("stream idle too long, closing it", ["stream_id": "cam"]))
        }
    }

    @Test func anyMessageKeepsAStreamAlive() async throws {
        let config = RelayConfiguration.test { $0.idleWarning = .seconds(1); $0.idleTimeout = .milliseconds(1500) }
        try await withRelay(config) { relay in
            let viewer = try await relay.viewer()
            let streamer = try await relay.streamer("cam")
            for i in 0..<20 {
                streamer.send(i % 2 == 0 ? TestFrames.text(i) : #"{"type":"ping"}"#)
                try await Task.sleep(for: .milliseconds(150))
            }
            #expect(viewer.json(type: "stream_ended").isEmpty)
            #expect(!relay.log.contains("stream idle, pinging it"))
        }
    }

    @Test func serverPingsViewersAndDropsOnesThatNeverAnswer() async throws {
        // 2 s: a loaded machine (the suites run in parallel) can hold up an answering client's pong for a second.
        let config = RelayConfiguration.test { $0.pingInterval = .milliseconds(300); $0.pingTimeout = .seconds(2) }
        try await withRelay(config) { relay in
            let silent = try await relay.viewer()
            let answering = try await relay.viewer(answerPings: true)
            try await silent.waitFor(type: "ping")
            try await silent.waitUntilFinished(timeout: .seconds(6))
            #expect(relay.log.contains("viewer did not answer ping, dropping it", ["viewer_id": "v-1"]))
            #expect(relay.log.contains("viewer removed", ["viewer_id": "v-1", "reason": "ping_timeout"]))
            // The answering one keeps being pinged, answers, and stays.
            try await Task.sleep(for: .milliseconds(1500))
            #expect(answering.json(type: "ping").count >= 3)
            #expect(!answering.isFinished)
        }
    }

    @Test func sameStreamIDReconnectingReplacesTheFirstWithoutStreamEnded() async throws {
        try await withRelay { relay in
            let viewer = try await relay.viewer()
            let first = try await relay.streamer("cam")
            first.send(TestFrames.text(0))
            try await viewer.waitFor(type: "frame", stream: "cam")
            let second = try await relay.streamer("cam")
            try await first.waitUntilFinished()
            second.send(TestFrames.text(1))
            try await viewer.waitFor("a frame from the new connection") { $0["type"] == .string("frame") && $0["seq"] == .number(1) }
            #expect(viewer.json(type: "stream_ended").isEmpty)
            #expect(viewer.json(type: "stream_started").count == 1)
            #expect(relay.log.contains("stream connection replaced by a new one", ["stream_id": "cam"]))
            await second.close()
            #expect(try await viewer.waitFor(type: "stream_ended", stream: "cam")["reason"] == .string("closed"))
        }
    }

    @Test func streamerVanishingWithoutCloseFrameEndsTheStream() async throws {
        try await withRelay { relay in
            let viewer = try await relay.viewer()
            let raw = try await RawWebSocket.connect(port: relay.port, path: "/ws/stream/cam")
            try await raw.send(text: TestFrames.text(0))
            try await viewer.waitFor(type: "frame", stream: "cam")
            await raw.drop()
            #expect(try await viewer.waitFor(type: "stream_ended", stream: "cam")["reason"] == .string("closed"))
        }
    }

    @Test func viewerKilledMidFrameLeavesTheOthersReceiving() async throws {
        try await withRelay { relay in
            let viewers = try await [relay.viewer(), relay.viewer(), relay.viewer()]
            let raw = try await RawWebSocket.connect(port: relay.port, path: "/ws/viewer")
            let streamer = try await relay.streamer("cam")
            streamer.send(TestFrames.text(0))
            try await raw.readSome()  // part of the first messages, then vanish
            await raw.drop()
            await viewers[1].close()
            for i in 1...5 { streamer.send(TestFrames.text(i)) }
            for v in [viewers[0], viewers[2]] {
                try await v.waitFor("all 6 frames") { $0["type"] == .string("frame") && $0["seq"] == .number(5) }
            }
            try await relay.eventually("both departed viewers removed") {
                guard case .array(let list) = try await relay.api("/api/viewers") else { return false }
                return list.count == 2
            }
        }
    }
}
