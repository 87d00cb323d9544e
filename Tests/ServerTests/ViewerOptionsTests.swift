import Foundation
@testable import FramepipeServer
import TestFixtures
import NIOCore
@testable import Pipeline
import Testing

@Suite("Viewer options and formats", .timeLimit(.minutes(1)))
struct ViewerOptionsTests {
    @Test func severalStreamsReachOneViewer() async throws {
        try await withRelay { relay in
            let viewer = try await relay.viewer()
            let streamers = try await [relay.streamer("S1"), relay.streamer("S2"), relay.streamer("S3")]
            for round in 0..<3 {
                for (i, s) in streamers.enumerated() { s.send(TestFrames.text(round + i)) }
            }
            try await viewer.waitFor("frames of all three") { _ in
                Set(viewer.json(type: "frame").compactMap { $0["stream_id"]?.stringValue }) == ["S1", "S2", "S3"]
            }
            for id in ["S1", "S2", "S3"] {
                let seqs = viewer.json(type: "frame").filter { $0["stream_id"] == .string(id) }.compactMap { $0["seq"]?.numberValue }
                #expect(seqs == seqs.sorted() && !seqs.isEmpty, "frames of \(id) in order")
            }
        }
    }

    @Test func streamsFilterLimitsEverythingTheViewerSees() async throws {
        try await withRelay { relay in
            let a = try await relay.streamer("A")
            a.send(TestFrames.text(0))
            let b = try await relay.streamer("B")
            b.send(TestFrames.text(1))
            try await relay.eventually("both live") { (try await RawHTTP.get(port: relay.port, path: "/api/streams").text).contains(#""id": "B""#) }
            let onlyB = try await relay.viewer("streams=B,C")
            #expect(try await onlyB.waitFor(type: "viewer_connected")["active_streams"] == .array([.string("B")]))
            a.send(TestFrames.text(2))
            b.send(TestFrames.text(3))
            try await onlyB.waitFor(type: "frame", stream: "B")
            let c = try await relay.streamer("C")
            c.send(TestFrames.text(0))
            try await onlyB.waitFor(type: "stream_started", stream: "C")
            await a.close()
            await b.close()
            try await onlyB.waitFor(type: "stream_ended", stream: "B")
            #expect(onlyB.json.allSatisfy { $0["stream_id"] != .string("A") })
        }
    }

    @Test func subscribeChangesTheFilterAndAnnouncesNewlyWatchedStreams() async throws {
        try await withRelay { relay in
            let a = try await relay.streamer("A")
            a.send(TestFrames.text(0))
            let viewer = try await relay.viewer("streams=none")
            #expect(try await viewer.waitFor(type: "viewer_connected")["active_streams"] == .array([]))
            viewer.send(#"{"type":"subscribe","streams":["A"]}"#)
            try await viewer.waitFor(type: "stream_started", stream: "A")
            a.send(TestFrames.text(1))
            try await viewer.waitFor(type: "frame", stream: "A")
            viewer.send(#"{"type":"subscribe","streams":"A"}"#)
            let error = try await viewer.waitFor(type: "error")
            #expect(error["reason"] == .string(#""streams" must be an array of stream ids"#))
        }
    }

    @Test func binaryViewerGetsTheExactJPEGBytesOfTextFrames() async throws {
        try await withRelay { relay in
            let viewer = try await relay.viewer("format=binary")
            try await viewer.waitFor(type: "viewer_connected")
            let streamer = try await relay.streamer("cam")
            let before = Date().millisecondsSince1970
            streamer.send(TestFrames.text(2, timestamp: 42))
            try await relay.eventually("binary frame") { !viewer.binaryFrames.isEmpty }
            let after = Date().millisecondsSince1970
            let (header, jpeg) = viewer.binaryFrames[0]
            // The relay's own arrival stamp, beside the sender's timestamp.
            let receivedAt = try #require(header["received_at"]?.numberValue)
            #expect((Double(before)...Double(after)).contains(receivedAt))
            #expect(header == .object([("type", .string("frame")), ("stream_id", .string("cam")), ("seq", .number(0)),
                                       ("timestamp", .number(42)), ("received_at", .number(receivedAt)), ("quality", .string("full"))]))
            #expect(jpeg == TestFrames.jpeg(2))
            #expect(viewer.json(type: "stream_started").count == 1, "control messages stay text")
        }
    }

    @Test func binaryIngestReachesJSONViewerAsDataURL() async throws {
        try await withRelay { relay in
            let json = try await relay.viewer()
            let binary = try await relay.viewer("format=binary")
            let streamer = try await relay.streamer("cam")
            streamer.send(TestFrames.jpeg(1))
            let frame = try await json.waitFor(type: "frame", stream: "cam")
            #expect(frame["frame"] == .string(TestPattern.dataURL(TestFrames.jpeg(1))))
            #expect(frame["timestamp"] == nil)
            try await relay.eventually("binary frame") { !binary.binaryFrames.isEmpty }
            #expect(binary.binaryFrames[0].jpeg == TestFrames.jpeg(1))
        }
    }

    @Test func badQueryOptionsAreRefusedBeforeUpgrade() async throws {
        try await withRelay { relay in
            let refused = try await RawHTTP.get(port: relay.port, path: "/ws/viewer?format=xml", upgrade: true)
            #expect(refused.status == 400)
            let accepted = try await RawHTTP.get(port: relay.port, path: "/ws/viewer?format=binary", upgrade: true)
            #expect(accepted.status == 101)
        }
    }

    @Test func pingPongAndUnknownTypesOnBothSockets() async throws {
        try await withRelay { relay in
            let viewer = try await relay.viewer()
            viewer.send(#"{"type":"ping"}"#)
            try await viewer.waitFor(type: "pong")
            viewer.send(#"{"type":"dance","extra":1}"#)
            #expect(try await viewer.waitFor(type: "error")["reason"] == .string(#"unknown message type "dance""#))
            let streamer = try await relay.streamer("cam")
            streamer.send(#"{"type":"ping","ignored":true}"#)
            try await streamer.waitFor(type: "pong")
            streamer.send(#"{"type":"teleport"}"#)
            #expect(try await streamer.waitFor(type: "error")["reason"] == .string(#"unknown message type "teleport""#))
            // Still connected and working after both.
            streamer.send(TestFrames.text(0))
            try await viewer.waitFor(type: "frame", stream: "cam")
        }
    }

    @Test func setQualityLowGetsTheDownscaledRendition() async throws {
        try await withRelay { relay in
            let full = try await relay.viewer("format=binary")
            let low = try await relay.viewer("format=binary")
            try await low.waitFor(type: "viewer_connected")
            low.send(#"{"type":"set_quality","quality":"low"}"#)
            // Wait until the relay has acted on it, not for a guessed time.
            try await relay.log.waitFor("viewer set quality", ["quality": "low"])
            let streamer = try await relay.streamer("cam")
            streamer.send(TestFrames.jpeg(0))
            try await relay.eventually("frames") { !full.binaryFrames.isEmpty && !low.binaryFrames.isEmpty }
            #expect(full.binaryFrames[0].header["quality"] == .string("full"))
            #expect(full.binaryFrames[0].jpeg == TestFrames.jpeg(0))
            #expect(low.binaryFrames[0].header["quality"] == .string("low"))
            #expect(low.binaryFrames[0].jpeg.readableBytes < TestFrames.jpeg(0).readableBytes)
            #expect(low.binaryFrames[0].jpeg.getBytes(at: low.binaryFrames[0].jpeg.readerIndex, length: 2) == [0xFF, 0xD8])
        }
    }

    /// `flow=credit`: a viewer that has acknowledged nothing holds at most
    /// two frames of a stream; each ack lets the newest waiting one go, so
    /// a slow device draws fresh pictures, not a queue of old ones.
    @Test func aCreditViewerGetsTheNextFrameOnlyAfterItsAck() async throws {
        try await withRelay { relay in
            let viewer = try await relay.viewer("format=binary&flow=credit")
            // Sent every frame: once it has seq 4, the relay has offered 2, 3 and 4 to the credit viewer too.
            let watcher = try await relay.viewer("format=binary")
            let streamer = try await relay.streamer("cam")
            for i in 0..<2 {
                streamer.send(TestFrames.text(i))
                try await relay.eventually("frame \(i)") { viewer.binaryFrames.count == i + 1 }
            }
            for i in 2..<5 { streamer.send(TestFrames.text(i)) }
            try await watcher.eventually("the watcher has frame 4") { watcher.binaryFrames.last?.header["seq"] == .number(4) }
            try await viewer.barrier()
            #expect(viewer.binaryFrames.map { $0.header["seq"]?.numberValue } == [0, 1], "no third frame before an ack")
            viewer.send(#"{"type":"ack","stream_id":"cam","seq":0}"#)
            try await relay.eventually("the newest waiting frame") { viewer.binaryFrames.count == 3 }
            #expect(viewer.binaryFrames.last?.header["seq"] == .number(4), "the newest, not the next in line")
            viewer.send(#"{"type":"ack","stream_id":"cam","seq":"five"}"#)
            let error = try await viewer.waitFor(type: "error")
            #expect(error["reason"] == .string(#""seq" must be a whole number ≥ 0"#))
            // A viewer without credits is sent every frame as its link takes them.
            let plain = try await relay.viewer("format=binary")
            // Without credits nothing waits for an ack: each frame comes without one.
            for i in 5..<8 {
                streamer.send(TestFrames.text(i))
                try await plain.eventually("frame \(i) without an ack") { plain.lastBinaryHeader?["seq"] == .number(Double(i)) }
            }
            #expect(plain.binaryFrames.compactMap { $0.header["seq"]?.numberValue }.suffix(3) == [5, 6, 7])
        }
    }

    /// `credits=1`: one frame of a stream in flight, so a device that draws
    /// two a second sees pictures one read old, not two.
    @Test func aViewerMayAskForOneCredit() async throws {
        try await withRelay { relay in
            let viewer = try await relay.viewer("format=binary&flow=credit&credits=1")
            // Sent every frame: once it has seq 3, the relay has offered 1, 2 and 3 to the credit viewer too.
            let watcher = try await relay.viewer("format=binary")
            let streamer = try await relay.streamer("cam")
            streamer.send(TestFrames.text(0))
            try await relay.eventually("frame 0") { viewer.binaryFrames.count == 1 }
            for i in 1..<4 { streamer.send(TestFrames.text(i)) }
            try await watcher.eventually("the watcher has frame 3") { watcher.lastBinaryHeader?["seq"] == .number(3) }
            try await viewer.barrier()
            #expect(viewer.binaryFrames.count == 1, "no second frame before an ack")
            viewer.send(#"{"type":"ack","stream_id":"cam","seq":0}"#)
            try await relay.eventually("the newest waiting frame") { viewer.binaryFrames.count == 2 }
            #expect(viewer.binaryFrames.last?.header["seq"] == .number(3))
            for (query, reason) in [("flow=credit&credits=0", "credits must be a whole number from 1 to 8, got \"0\""),
                                    ("credits=2", "credits applies to flow=credit only")] {
                let response = try await RawHTTP.get(port: relay.port, path: "/ws/viewer?\(query)", upgrade: true)
                #expect(response.status == 400 && response.reason == reason, "\(query): \(response.text)")
            }
        }
    }

    @Test func anUnknownFlowIsRefusedBeforeTheUpgrade() async throws {
        try await withRelay { relay in
            let response = try await RawHTTP.get(port: relay.port, path: "/ws/viewer?flow=pull", upgrade: true)
            #expect(response.status == 400)
            #expect(response.text.contains("flow must be push or credit"))
        }
    }
}
