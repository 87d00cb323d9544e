@testable import FramepipeServer
import TestFixtures
import NIOCore
@testable import Pipeline
import Testing

@Suite("Bad input", .timeLimit(.minutes(1)))
struct BadInputTests {
    /// Each corrupted message, and the reason code logged for it.
    static let corrupted: [(name: String, message: Message, code: String)] = {
        let jpeg = Array(TestFrames.jpeg(0).readableBytesView)
        let truncated = ByteBuffer(bytes: jpeg.prefix(jpeg.count / 2))
        let b64 = TestPattern.dataURL(TestFrames.jpeg(0))
        return [
            ("non-string frame", .text(#"{"type":"frame","frame":12345}"#), "frame_not_string"),
            ("no data:image prefix", .text(#"{"type":"frame","frame":"hello"}"#), "not_data_url"),
            ("bad base64", .text(#"{"type":"frame","frame":"data:image/jpeg;base64,/9j/4A*A"}"#), "bad_base64"),
            ("wrong MIME type", .text(#"{"type":"frame","frame":"data:image/png;base64,iVBORw0KGgo="}"#), "mime_not_allowed"),
            ("not a JPEG", .binary(ByteBuffer(bytes: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])), "not_jpeg"),
            ("truncated JPEG", .binary(truncated), "truncated"),
            ("oversize", .text(#"{"type":"frame","frame":"\#(b64)\#(String(repeating: "A", count: 200_000))"}"#), "too_large"),
            ("invalid JSON", .text(#"{"type":"frame","frame":"#), "invalid_json"),
            ("no type", .text(#"{"frame":"data:image/jpeg;base64,AAAA"}"#), "no_type"),
        ]
    }()

    enum Message: Sendable { case text(String), binary(ByteBuffer) }

    static func send(_ message: Message, to socket: TestSocket) {
        switch message {
        case .text(let t): socket.send(t)
        case .binary(let b): socket.send(b)
        }
    }

    @Test(arguments: 0..<corrupted.count)
    func badFrameIsDroppedLoggedAndCountedNeverDelivered(index: Int) async throws {
        let (name, message, code) = Self.corrupted[index]
        try await withRelay { relay in
            let viewer = try await relay.viewer()
            let streamer = try await relay.streamer("cam")
            streamer.send(TestFrames.text(0))
            try await viewer.waitFor(type: "frame", stream: "cam")
            Self.send(message, to: streamer)
            streamer.send(TestFrames.text(1))
            try await viewer.waitFor("the good frame after the bad one") { $0["type"] == .string("frame") && $0["seq"] != .number(0) }
            #expect(viewer.json(type: "frame").count == 2, "\(name) must not reach a viewer")
            try await relay.log.waitFor("bad frame dropped", ["reason": code, "stream_id": "cam"])
            let streams = try await RawHTTP.get(port: relay.port, path: "/api/streams").text
            #expect(streams.contains(#""errors": 1"#), "\(name) is counted")
            let metrics = try await RawHTTP.get(port: relay.port, path: "/metrics").text
            #expect(metrics.contains(#"reason="\#(code)""#))
        }
    }

    @Test func maxErrorsInARowClosesTheStreamWithReasonErrors() async throws {
        try await withRelay { relay in
            let viewer = try await relay.viewer()
            let streamer = try await relay.streamer("cam")
            streamer.send(TestFrames.text(0))
            try await viewer.waitFor(type: "frame", stream: "cam")
            for i in 0..<10 { Self.send(Self.corrupted[i % Self.corrupted.count].message, to: streamer) }
            let ended = try await viewer.waitFor(type: "stream_ended", stream: "cam")
            #expect(ended["reason"] == .string("errors"))
            try await streamer.waitUntilFinished()
            #expect(viewer.json(type: "frame").count == 1)
            #expect(relay.log.contains("stream has too many bad frames, closing it", ["stream_id": "cam", "bad_frames": "10"]))
        }
    }

    @Test func goodFramesBetweenBadOnesKeepTheStreamAlive() async throws {
        try await withRelay { relay in
            let viewer = try await relay.viewer()
            let streamer = try await relay.streamer("cam")
            for i in 0..<30 {
                Self.send(Self.corrupted[i % Self.corrupted.count].message, to: streamer)
                if i % 5 == 4 {
                    streamer.send(TestFrames.text(i))
                    let good = (i + 1) / 5
                    try await viewer.waitFor("\(good) good frames") { _ in viewer.json(type: "frame").count == good }
                }
            }
            #expect(viewer.json(type: "stream_ended").isEmpty)
        }
    }

    @Test func everyReasonInTheErrorReplyIsSaidToTheStreamer() async throws {
        try await withRelay { relay in
            let streamer = try await relay.streamer("cam")
            streamer.send(#"{"type":"frame","frame":12345}"#)
            let error = try await streamer.waitFor(type: "error")
            #expect(error["reason"] == .string(#""frame" is a number, not a data URL string"#))
        }
    }
}
