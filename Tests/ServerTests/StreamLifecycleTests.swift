@testable import FramepipeServer
import TestFixtures
import NIOCore
@testable import Pipeline
import Testing

@Suite("Stream lifecycle", .timeLimit(.minutes(1)))
struct StreamLifecycleTests {
    @Test func viewerSeesStartFramesInOrderAndEnd() async throws {
        try await withRelay { relay in
            let viewer = try await relay.viewer()
            try await viewer.waitFor(type: "viewer_connected")
            let streamer = try await relay.streamer("P-DHE-001")
            // Paced by the viewer, which keeps up: it must get every frame.
            for i in 0..<5 {
                streamer.send(TestFrames.text(i, timestamp: 1_732_500_000_000 + Int64(i)))
                try await viewer.waitFor("frame \(i)") { $0["type"] == .string("frame") && $0["seq"] == .number(Double(i)) }
            }
            await streamer.close()
            let ended = try await viewer.waitFor(type: "stream_ended", stream: "P-DHE-001")
            #expect(ended == .object([("type", .string("stream_ended")), ("stream_id", .string("P-DHE-001")), ("reason", .string("closed"))]))

            let types = viewer.json.compactMap { $0["type"]?.stringValue }
            #expect(types == ["viewer_connected", "stream_started", "frame", "frame", "frame", "frame", "frame", "stream_ended"])
            let frames = viewer.json(type: "frame")
            #expect(frames.compactMap { $0["seq"]?.numberValue } == [0, 1, 2, 3, 4])
            #expect(frames.compactMap { $0["timestamp"]?.numberValue } == (0..<5).map { 1_732_500_000_000 + Double($0) })
            #expect(frames.allSatisfy { $0["stream_id"] == .string("P-DHE-001") && $0["quality"] == .string("full") })
            #expect(frames[2]["frame"] == .string(TestPattern.dataURL(TestFrames.jpeg(2))))
        }
    }

    @Test func viewerConnectingMidStreamGetsActiveListFirst() async throws {
        try await withRelay { relay in
            let a = try await relay.streamer("P-DHE-001")
            let b = try await relay.streamer("P-DHE-002")
            let watcher = try await relay.viewer()
            a.send(TestFrames.text(0))
            b.send(TestFrames.text(1))
            try await watcher.waitFor(type: "stream_started", stream: "P-DHE-002")
            try await watcher.waitFor(type: "stream_started", stream: "P-DHE-001")
            a.send(TestFrames.text(2))
            let late = try await relay.viewer()
            let first = try await late.waitFor(type: "viewer_connected")
            #expect(late.json.first == first)
            #expect(first["active_streams"] == .array([.string("P-DHE-001"), .string("P-DHE-002")]))
            #expect(first["viewer_id"]?.stringValue?.hasPrefix("v-") == true)
            a.send(TestFrames.text(3))
            try await late.waitFor(type: "frame", stream: "P-DHE-001")
            #expect(late.json(type: "stream_started").isEmpty, "an active stream is announced once, in the list")
        }
    }

    @Test func streamWithoutAValidFrameIsNotAnnounced() async throws {
        try await withRelay { relay in
            let viewer = try await relay.viewer()
            let streamer = try await relay.streamer("quiet")
            streamer.send(#"{"type":"ping"}"#)
            try await streamer.waitFor(type: "pong")
            await streamer.close()
            // The hub has ended the stream (whatever it told viewers is queued by now), and the
            // viewer's pong proves nothing queued before it is still on its way.
            try await relay.log.waitFor("stream ended", ["stream_id": "quiet", "viewers_told": "0"])
            try await viewer.barrier()
            #expect(viewer.json.compactMap { $0["type"]?.stringValue } == ["viewer_connected", "pong"])
        }
    }

    @Test(arguments: [("A", "B"), ("B", "A")])
    func startTwoThenStopInEitherOrder(firstToStop: String, secondToStop: String) async throws {
        try await withRelay { relay in
            let viewer = try await relay.viewer()
            let streams = ["A": try await relay.streamer("A"), "B": try await relay.streamer("B")]
            streams["A"]!.send(TestFrames.text(0))
            try await viewer.waitFor(type: "stream_started", stream: "A")
            streams["B"]!.send(TestFrames.text(1))
            try await viewer.waitFor(type: "stream_started", stream: "B")
            await streams[firstToStop]!.close()
            try await viewer.waitFor(type: "stream_ended", stream: firstToStop)
            streams[secondToStop]!.send(TestFrames.text(2))
            try await viewer.waitFor("a frame of \(secondToStop) after \(firstToStop) ended") {
                $0["type"] == .string("frame") && $0["stream_id"] == .string(secondToStop) && $0["seq"] == .number(1)
            }
            await streams[secondToStop]!.close()
            try await viewer.waitFor(type: "stream_ended", stream: secondToStop)
            let late = try await relay.viewer()
            #expect(try await late.waitFor(type: "viewer_connected")["active_streams"] == .array([]))
        }
    }

    @Test func invalidStreamIDIsRefusedBeforeUpgrade() async throws {
        try await withRelay { relay in
            for bad in ["has%20space", "bad!id", String(repeating: "x", count: 65)] {
                await #expect(throws: (any Error).self) { try await relay.streamer(bad) }
            }
            let status = try await RawHTTP.get(port: relay.port, path: "/ws/stream/bad!id", upgrade: true).status
            #expect(status == 400)
            _ = try await relay.streamer(String(repeating: "x", count: 64))
            _ = try await relay.streamer("a.b_c-D9")
        }
    }
}
