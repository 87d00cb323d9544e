@testable import FramepipeServer
import NIOCore
@testable import Pipeline
import Testing

/// `POST /api/streams/{id}/ingest` through a real relay: frames from HTTP
/// senders run the stream's pipeline and reach viewers like WebSocket
/// frames. (ffmpeg and curl feed it in Tests/Browser/test_standard_clients.py.)
@Suite("HTTP ingest")
struct HTTPIngestTests {
    static func post(_ relay: RelayHandle, _ stream: String, type: String?, body: ByteBuffer) async throws -> RawHTTP.Response {
        let socket = try await RawWebSocket.plain(port: relay.port)
        var head = "POST /api/streams/\(stream)/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: \(body.readableBytes)\r\n"
        if let type { head += "Content-Type: \(type)\r\n" }
        try await socket.send(raw: head + "\r\n")
        try await socket.sendBytes(body)
        let raw = try await socket.read { String(buffer: $0).contains("\r\n\r\n{") && String(buffer: $0).hasSuffix("}") }
        await socket.drop()
        return RawHTTP.parse(raw)
    }

    @Test func oneJPEGARequestKeepsTheStreamLiveAndABadOneIsRefusedWithItsReason() async throws {
        try await withRelay { relay in
            let viewer = try await relay.viewer("format=binary")
            try await viewer.waitFor(type: "viewer_connected")
            let first = try await Self.post(relay, "bed-1", type: "image/jpeg", body: TestFrames.jpeg(0))
            #expect(first.status == 200, "\(first.text)")
            #expect(first.text.contains(#""taken": true"#))
            _ = try await viewer.waitFor(type: "stream_started", stream: "bed-1")
            let second = try await Self.post(relay, "bed-1", type: "image/jpeg", body: TestFrames.jpeg(1))
            #expect(second.text.contains(#""seq": 1"#), "the same stream: \(second.text)")
            try await viewer.eventually("both frames seen") { viewer.binaryFrames.count == 2 }
            #expect(viewer.binaryFrames.map(\.jpeg) == [TestFrames.jpeg(0), TestFrames.jpeg(1)])
            let bad = try await Self.post(relay, "bed-1", type: "image/jpeg", body: ByteBuffer(string: "not a picture"))
            #expect(bad.status == 422)
            #expect(bad.text.contains("not_jpeg"))
            let wrongType = try await Self.post(relay, "bed-1", type: "text/plain", body: ByteBuffer(string: "x"))
            #expect(wrongType.status == 415)
            #expect(wrongType.text.contains("send image/jpeg"))
            #expect(relay.log.contains("bad frame dropped", ["stream_id": "bed-1"]))
        }
    }

    @Test func aMultipartBodyIsAStreamThatEndsWithItsBody() async throws {
        try await withRelay { relay in
            let viewer = try await relay.viewer("format=binary")
            try await viewer.waitFor(type: "viewer_connected")
            let socket = try await RawWebSocket.plain(port: relay.port)
            // ffmpeg's way: chunked, no Content-Type, lengths on the parts, no closing boundary.
            try await socket.send(raw: "POST /api/streams/cam/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
            func chunk(_ bytes: ByteBuffer) async throws {
                try await socket.send(raw: String(bytes.readableBytes, radix: 16) + "\r\n")
                try await socket.sendBytes(bytes)
                try await socket.send(raw: "\r\n")
            }
            for i in 0..<3 {
                var part = ByteBuffer(string: "--ffmpeg\r\nContent-type: image/jpeg\r\nContent-length: \(TestFrames.jpeg(i).readableBytes)\r\n\r\n")
                part.writeImmutableBuffer(TestFrames.jpeg(i))
                part.writeString("\r\n")
                try await chunk(part)
                // Each part reaches the viewer before the next is sent: nothing waits for the next boundary.
                try await viewer.eventually("part \(i) seen") { viewer.binaryFrames.count == i + 1 }
            }
            try await socket.send(raw: "0\r\n\r\n")
            let response = try await socket.read { String(buffer: $0).hasSuffix("}") }
            #expect(String(buffer: response).hasPrefix("HTTP/1.1 200"))
            #expect(String(buffer: response).contains(#""frames": 3"#))
            let ended = try await viewer.waitFor(type: "stream_ended", stream: "cam")
            #expect(ended["reason"] == .string("closed"))
            await socket.drop()
        }
    }

    /// A multipart body may last hours: its token is leased, so revoking it
    /// ends the stream as it ends a WebSocket streamer's.
    @Test func revokingTheTokenOfALongBodyEndsItsStream() async throws {
        let file = try TemporaryFile("revoked.jsonl")
        defer { file.remove() }
        let publisher = try await TestTokens.hs256(.streamer, ["cam"])
        let watcher = try await TestTokens.hs256(.viewer, ["*"])
        try await withRelay(TokenLifetimeTests.authed(revocationFile: file.path)) { relay in
            let viewer = try await relay.viewer("token=\(watcher)")
            let socket = try await RawWebSocket.plain(port: relay.port)
            try await socket.send(raw: "POST /api/streams/cam/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(publisher)\r\n"
                                  + "Content-Type: multipart/x-mixed-replace;boundary=ffmpeg\r\nTransfer-Encoding: chunked\r\n\r\n")
            func part(_ i: Int) async throws {
                var bytes = ByteBuffer(string: "--ffmpeg\r\nContent-Type: image/jpeg\r\nContent-Length: \(TestFrames.jpeg(i).readableBytes)\r\n\r\n")
                bytes.writeImmutableBuffer(TestFrames.jpeg(i))
                bytes.writeString("\r\n")
                try await socket.send(raw: String(bytes.readableBytes, radix: 16) + "\r\n")
                try await socket.sendBytes(bytes)
                try await socket.send(raw: "\r\n")
            }
            try await part(0)
            try await viewer.waitFor(type: "stream_started", stream: "cam")
            let jti = TestTokens.claim("jti", of: publisher)!.stringValue!
            #expect(try await runFramepipe(["revoke", "--file", file.path, "--jti", jti]).status == 0)
            let ended = try await viewer.waitFor(type: "stream_ended", stream: "cam", timeout: .seconds(10))
            #expect(ended["reason"] == .string("token_revoked"))
            // The sender's next part is not taken; its answer says why the stream ended.
            try await part(1)
            let response = try await socket.read { String(buffer: $0).hasSuffix("}") }
            #expect(String(buffer: response).contains(#""ended": "token_revoked""#), "\(String(buffer: response))")
            #expect(!viewer.json.contains { $0["type"] == .string("frame") && $0["seq"] == .number(1) })
            await socket.drop()
        }
    }

    @Test func aMalformedBodyIsRefusedAndTheStreamEndsNothingElseAffected() async throws {
        try await withRelay { relay in
            let other = try await relay.streamer("other")
            let viewer = try await relay.viewer("format=binary")
            other.send(TestFrames.jpeg(0))
            try await viewer.eventually("the other stream is live") { viewer.binaryFrames.count == 1 }
            var body = ByteBuffer(string: "--b\r\nContent-Length: 3\r\n\r\nabcGARBAGE")
            let refused = try await Self.post(relay, "cam", type: "multipart/x-mixed-replace;boundary=b", body: body)
            #expect(refused.status == 400)
            #expect(refused.text.contains("not followed by the boundary"), "\(refused.text)")
            #expect(relay.log.contains("HTTP ingest body refused", ["stream_id": "cam"]))
            other.send(TestFrames.jpeg(1))
            try await viewer.eventually("the other stream goes on") { viewer.binaryFrames.count == 2 }
            body.clear()
        }
    }

    @Test func anHTTPStreamerReplacesAWebSocketOneOfTheSameStream() async throws {
        try await withRelay { relay in
            let socketStreamer = try await relay.streamer("cam")
            let viewer = try await relay.viewer("format=binary")
            socketStreamer.send(TestFrames.jpeg(0))
            try await viewer.eventually("live") { viewer.binaryFrames.count == 1 }
            let posted = try await Self.post(relay, "cam", type: "image/jpeg", body: TestFrames.jpeg(1))
            #expect(posted.status == 200)
            try await socketStreamer.waitUntilFinished()
            #expect(socketStreamer.closeFrame?.reason == "replaced")
        }
    }
}
