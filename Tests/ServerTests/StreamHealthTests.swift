import Foundation
import NIOCore
@testable import FramepipeServer
@testable import Pipeline
import TestFixtures
import Testing

/// `picture-health` in a real relay: a camera repeating one picture turns
/// its tile's state to frozen for every viewer, in order with its frames,
/// for late viewers too, in the API, the metrics and the webhooks.
@Suite("Stream health", .timeLimit(.minutes(1)))
struct StreamHealthTests {
    /// Frames in step with the relay's clock: each is sent once the viewer
    /// has the one before, and the clock then moves a quarter second.
    struct InStep {
        let viewer: TestSocket
        let clock: ManualRelayClock
        var seq = 0

        mutating func send(_ jpeg: ByteBuffer, frames: Int, by streamer: TestSocket) async throws {
            for _ in 0..<frames {
                streamer.send(jpeg)
                let sent = Double(seq)
                seq += 1
                try await viewer.waitFor("frame \(sent)") { $0["type"] == .string("frame") && $0["seq"] == .number(sent) }
                clock.advance(by: .milliseconds(250))
            }
        }
    }

    static let pipelines = #"""
    {"default": "watched", "pipelines": {"watched": {"stages": [
      {"stage": "decode-check"}, {"stage": "picture-health", "interval": 0, "frozenAfter": 1, "recoverAfter": 0.5}, {"stage": "fan-out"}]}}}
    """#

    @Test func aFrozenPictureIsToldInOrderToViewersLateViewersTheAPIAndWebhooks() async throws {
        let receiver = try await WebhookReceiver()
        defer { Task { await receiver.stop() } }
        // The picture's rules count the relay's time: the test moves it a
        // quarter second per frame, once the frame before has been seen.
        let clock = ManualRelayClock()
        let configuration = RelayConfiguration.test {
            $0.webhooks = WebhookSettings(urls: [receiver.url], secret: WebhookTests.secret)
            $0.clock = clock
        }
        try await withRelay(configuration, pipelinesJSON: Self.pipelines) { relay in
            let viewer = try await relay.viewer()
            let streamer = try await relay.streamer("bed-4")
            let still = TestPattern.jpeg(width: 320, height: 240, frame: 1)
            var camera = InStep(viewer: viewer, clock: clock)
            func send(_ jpeg: ByteBuffer, frames: Int) async throws { try await camera.send(jpeg, frames: frames, by: streamer) }
            try await send(still, frames: 8)  // 2 s of one picture
            let frozen = try await viewer.waitFor(type: "stream_health", stream: "bed-4")
            #expect(frozen["kind"] == .string("picture") && frozen["state"] == .string("frozen"))
            #expect(frozen["largest_change"] == .number(0) && frozen["since"]?.stringValue != nil)
            // In order: after stream_started and the frames before it, before the frames after it.
            let types = viewer.json.compactMap { $0["type"]?.stringValue }
            let at = try #require(types.firstIndex(of: "stream_health"))
            #expect(types.firstIndex(of: "stream_started")! < at)
            let seqs = viewer.json.compactMap { $0["type"] == .string("frame") ? $0["seq"]?.numberValue : nil }
            #expect(seqs == (0..<8).map(Double.init))
            // Exactly when: the second frame is the first that repeats one, and the
            // picture is frozen with the frame a second of the relay's clock after it.
            let frames = viewer.json.enumerated().filter { $0.element["type"] == .string("frame") }
            #expect(frames.filter { $0.offset < at }.map { $0.element["seq"] } == (0...4).map { .number(Double($0)) })
            let receivedAt = frames.map { $0.element["received_at"]?.numberValue ?? 0 }
            #expect(receivedAt[5] - receivedAt[1] == 1000, "frozen a second after the first repeat: \(receivedAt)")
            // A viewer that arrives now hears the state right after viewer_connected.
            let late = try await relay.viewer()
            #expect(late.json.first?["type"] == .string("viewer_connected"))
            try await late.waitFor(type: "stream_health", stream: "bed-4")
            #expect(late.json.firstIndex { $0["type"] == .string("stream_health") } == 1)

            let streams = try await relay.api("/api/streams")
            #expect(streams.arrayValue?.first?["health"]?["picture"]?["state"] == .string("frozen"))
            let metrics = try await RawHTTP.get(port: relay.port, path: "/metrics").text
            #expect(metrics.contains(#"framepipe_stream_health_events_total{kind="picture",state="frozen"} 1"#))

            // The camera moves again: ok, once, half a second (recoverAfter) after the first moving frame.
            for i in 0..<4 { try await send(TestPattern.jpeg(width: 320, height: 240, frame: 10 + i), frames: 1) }
            let recovered = try await viewer.waitFor("ok") { $0["type"] == .string("stream_health") && $0["state"] == .string("ok") }
            #expect(recovered["stream_id"] == .string("bed-4"))
            let okAt = try #require(viewer.json.firstIndex { $0["type"] == .string("stream_health") && $0["state"] == .string("ok") })
            let firstAfterOK = try #require(viewer.json[okAt...].first { $0["type"] == .string("frame") })
            #expect(firstAfterOK["seq"] == .number(10), "ok with the third moving frame (seq 8 moved first)")
            #expect(viewer.json(type: "stream_health").count == 2)
            try await relay.eventually("both posted") { receiver.accepted.filter { $0.body.contains("stream_health") }.count == 2 }
            let posted = receiver.accepted.map { try! JSONParser.parse($0.body) }.filter { $0["type"] == .string("stream_health") }
            #expect(posted.map { $0["state"] } == [.string("frozen"), .string("ok")])
            #expect(posted.allSatisfy { $0["stream_id"] == .string("bed-4") && $0["kind"] == .string("picture") })
            #expect(relay.log.contains("stream health problem", ["stream_id": "bed-4", "state": "frozen"]))
            await streamer.close()
        }
    }

    /// A camera that reconnects (a replaced connection) gets a new pipeline,
    /// whose picture-health starts from the state the stream already has:
    /// otherwise a frozen tile could never clear, since the new stage would
    /// think it had never raised anything.
    @Test func aCameraThatReconnectsWhileFrozenIsOKOnceItsNewPicturesMove() async throws {
        let clock = ManualRelayClock()
        try await withRelay(.test { $0.clock = clock }, pipelinesJSON: Self.pipelines) { relay in
            let viewer = try await relay.viewer()
            let still = TestPattern.jpeg(width: 320, height: 240, frame: 1)
            var camera = InStep(viewer: viewer, clock: clock)
            func send(_ jpeg: ByteBuffer, frames: Int, by streamer: TestSocket) async throws {
                try await camera.send(jpeg, frames: frames, by: streamer)
            }
            let first = try await relay.streamer("bed-4")
            try await send(still, frames: 8, by: first)
            let frozen = try await viewer.waitFor(type: "stream_health", stream: "bed-4")
            #expect(frozen["state"] == .string("frozen"))

            let second = try await relay.streamer("bed-4")
            try await first.waitUntilFinished()
            // Still the same picture, for less than frozenAfter: it stays frozen, and is not told again.
            try await send(still, frames: 2, by: second)
            #expect(viewer.json(type: "stream_health").count == 1)
            let streams = try await relay.api("/api/streams")
            #expect(streams.arrayValue?.first?["health"]?["picture"]?["since"] == frozen["since"], "frozen since the first connection's repeat")
            // It moves: ok, as for a camera that never reconnected.
            for i in 0..<4 { try await send(TestPattern.jpeg(width: 320, height: 240, frame: 10 + i), frames: 1, by: second) }
            let recovered = try await viewer.waitFor("ok") { $0["type"] == .string("stream_health") && $0["state"] == .string("ok") }
            #expect(recovered["stream_id"] == .string("bed-4"))
            #expect(viewer.json(type: "stream_health").count == 2)
            #expect(viewer.json(type: "stream_ended").isEmpty)
            await second.close()
        }
    }
}
