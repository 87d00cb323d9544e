import Foundation
import NIOCore
@testable import Pipeline
import Testing

/// `{"type":"view",…}` over real sockets: what a viewer says it shows
/// decides what it is sent, per stream, and `/api/viewers` shows it.
@Suite("View hints")
struct ViewHintTests {
    /// 160×120 test frames with a ladder of 1/2 (80 px) and 1/4 (40 px).
    static let ladderPipelines = #"""
    {"default": "ladder", "pipelines": {"ladder": {"stages": [
      {"stage": "decode-check", "mode": "header"},
      {"stage": "downscale", "renditions": [{"scale": "1/2", "quality": 60}, {"scale": "1/4", "quality": 50}]},
      {"stage": "fan-out"}]}}}
    """#

    /// The viewer's entry for `stream` in `/api/viewers`.
    func view(_ relay: RelayHandle, viewer: String, stream: String) async throws -> JSONValue? {
        let viewers = try await relay.api("/api/viewers").arrayValue ?? []
        let entry = viewers.first { $0["id"] == .string(viewer) }
        return entry?["views"]?.arrayValue?.first { $0["stream_id"] == .string(stream) }
    }

    @Test func aHiddenTileGetsNothingAndTheNewestFrameAtOnceWhenShownAgain() async throws {
        try await withRelay(pipelinesJSON: Self.ladderPipelines) { relay in
            let watcher = try await relay.viewer("format=binary")
            let other = try await relay.viewer("format=binary")
            let id = try await watcher.waitFor(type: "viewer_connected")["viewer_id"]!.stringValue!
            let streamer = try await relay.streamer("cam")
            streamer.send(TestFrames.jpeg(0))
            try await watcher.waitFor(type: "stream_started", stream: "cam")
            try await relay.eventually("first frame") { watcher.binaryFrames.count == 1 && other.binaryFrames.count == 1 }

            watcher.send(#"{"type":"view","stream_id":"cam","visible":false}"#)
            try await relay.eventually("hidden") { try await view(relay, viewer: id, stream: "cam")?["visible"] == .bool(false) }
            for i in 1...5 {
                // One at a time: a burst would let latest-wins replace some for the other viewer.
                streamer.send(TestFrames.jpeg(i))
                try await relay.eventually("frame \(i) to the other viewer") { other.binaryFrames.count == 1 + i }
            }
            #expect(watcher.binaryFrames.count == 1, "a hidden tile is sent no frames")
            streamer.send(#"{"type":"ping"}"#)
            try await streamer.waitFor(type: "pong")

            watcher.send(#"{"type":"view","stream_id":"cam","visible":true,"width":160,"height":120}"#)
            try await relay.eventually("the cached frame") { watcher.binaryFrames.count == 2 }
            let replay = watcher.binaryFrames[1].header
            #expect(replay["cached"] == .bool(true))
            #expect(replay["seq"] == other.binaryFrames[5].header["seq"], "the newest frame, not a new one")
            streamer.send(TestFrames.jpeg(6))
            try await relay.eventually("frames again") { watcher.binaryFrames.count == 3 }
            #expect(watcher.binaryFrames[2].header["cached"] == nil)
        }
    }

    /// A 1 fps camera's tile is not blank for a second: a viewer that joins
    /// gets the newest frame at once, marked cached.
    @Test func aViewerJoiningALiveStreamGetsItsNewestFrameAtOnce() async throws {
        try await withRelay(pipelinesJSON: Self.ladderPipelines) { relay in
            let first = try await relay.viewer("format=binary")
            let streamer = try await relay.streamer("cam")
            streamer.send(TestFrames.jpeg(0))
            streamer.send(TestFrames.jpeg(1))
            try await relay.eventually("both frames") { first.binaryFrames.last?.header["seq"] == .number(1) }
            let late = try await relay.viewer("format=binary")
            try await relay.eventually("the cached frame") { late.binaryFrames.count == 1 }
            #expect(late.binaryFrames[0].header["seq"] == .number(1) && late.binaryFrames[0].header["cached"] == .bool(true))
            #expect(late.binaryFrames[0].jpeg == TestFrames.jpeg(1))
            #expect(late.messages.first.map { if case .text(let t) = $0 { t.contains("viewer_connected") } else { false } } == true,
                    "viewer_connected still comes first")
        }
    }

    @Test func eachTileGetsARenditionFitForItsOwnSize() async throws {
        try await withRelay(pipelinesJSON: Self.ladderPipelines) { relay in
            let viewer = try await relay.viewer("format=binary")
            let id = try await viewer.waitFor(type: "viewer_connected")["viewer_id"]!.stringValue!
            let small = try await relay.streamer("cam-small")
            let large = try await relay.streamer("cam-large")
            small.send(TestFrames.jpeg(0))
            large.send(TestFrames.jpeg(0))
            try await relay.eventually("both started") { viewer.json(type: "stream_started").count == 2 }
            viewer.send(#"{"type":"view","stream_id":"cam-small","width":40,"height":30}"#)
            viewer.send(#"{"type":"view","stream_id":"cam-large","width":1200,"height":900}"#)
            try await relay.eventually("sizes applied") {
                try await view(relay, viewer: id, stream: "cam-small")?["rendition"] == .string("1/4")
            }
            let entry = try await view(relay, viewer: id, stream: "cam-small")
            #expect(entry?["width"] == .number(40))
            #expect(entry?["rendition_width"] == .number(40))
            #expect(try await view(relay, viewer: id, stream: "cam-large")?["rendition"] == .string("full"))
            let before = viewer.binaryFrames.count
            small.send(TestFrames.jpeg(1))
            large.send(TestFrames.jpeg(1))
            try await relay.eventually("one more of each") { viewer.binaryFrames.count == before + 2 }
            let latest = viewer.binaryFrames.suffix(2)
            let smallFrame = try #require(latest.first { $0.header["stream_id"] == .string("cam-small") })
            let largeFrame = try #require(latest.first { $0.header["stream_id"] == .string("cam-large") })
            #expect(smallFrame.header["quality"] == .string("low"))
            #expect(smallFrame.header["rendition"] == .string("1/4"))
            #expect(smallFrame.header["width"] == .number(40) && smallFrame.header["height"] == .number(30))
            #expect(smallFrame.jpeg.getBytes(at: smallFrame.jpeg.readerIndex, length: 2) == [0xFF, 0xD8])
            #expect(largeFrame.header["quality"] == .string("full"))
            #expect(largeFrame.jpeg == TestFrames.jpeg(1))
        }
    }

    /// The file's `"delivery"` reaches every viewer: with `fitToDisplay` off,
    /// a small tile is sent full frames while its link keeps up.
    @Test func theConfiguredPolicyIsTheOneThatChooses() async throws {
        let unfitted = Self.ladderPipelines.replacingOccurrences(of: #"{"default": "ladder","#,
                                                                 with: #"{"default": "ladder", "delivery": {"policy": "goodput", "fitToDisplay": false},"#)
        try await withRelay(pipelinesJSON: unfitted) { relay in
            let viewer = try await relay.viewer("format=binary")
            let id = try await viewer.waitFor(type: "viewer_connected")["viewer_id"]!.stringValue!
            let streamer = try await relay.streamer("cam")
            streamer.send(TestFrames.jpeg(0))
            try await viewer.waitFor(type: "stream_started", stream: "cam")
            viewer.send(#"{"type":"view","stream_id":"cam","width":40,"height":30}"#)
            try await relay.eventually("view applied") { try await view(relay, viewer: id, stream: "cam")?["width"] == .number(40) }
            #expect(try await view(relay, viewer: id, stream: "cam")?["rendition"] == .string("full"))
            let pipelines = try await relay.api("/api/pipelines")
            #expect(pipelines["delivery"]?["policy"] == .string("goodput") && pipelines["delivery"]?["fitToDisplay"] == .bool(false))
        }
    }

    @Test func aMalformedViewIsAnsweredWithItsReason() async throws {
        try await withRelay { relay in
            let viewer = try await relay.viewer()
            try await viewer.waitFor(type: "viewer_connected")
            viewer.send(#"{"type":"view","stream_id":"cam","width":-3}"#)
            #expect(try await viewer.waitFor(type: "error")["reason"] == .string(#""width" must be a whole number of device pixels, 0 to 65535"#))
            viewer.send(#"{"type":"view","stream_id":"bad id!"}"#)
            #expect(try await viewer.waitFor("second error") { $0["type"] == .string("error") && $0["reason"] == .string(#""stream_id" must be a stream id"#) }["type"] != nil)
        }
    }
}
