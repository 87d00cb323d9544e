@testable import FramepipeServer
import NIOCore
@testable import Pipeline
import Testing

/// `GET /api/streams/{id}/mjpeg` through a real relay and a plain socket,
/// read as it streams. (ffmpeg, VLC, GStreamer and Chromium read it in
/// Tests/Browser/test_standard_clients.py.)
@Suite("MJPEG over HTTP")
struct MJPEGTests {
    /// One part of the body: its headers and its JPEG.
    struct Part {
        let headers: [String: String]
        let jpeg: ByteBuffer
    }

    /// The response so far: status line and headers, and the parts that are
    /// whole, each followed by its boundary; `ended` once the last chunk came.
    struct Reading {
        var head = ""
        var parts: [Part] = []
        var ended = false
        /// Body bytes after the last whole part's boundary.
        var rest = ByteBuffer()

        init(_ raw: ByteBuffer) {
            var raw = raw
            guard let headEnd = raw.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) else { return }
            let headLength = headEnd.upperBound - raw.readerIndex
            head = raw.readString(length: headLength) ?? ""
            // Chunked transfer coding, undone.
            var body = ByteBuffer()
            while let line = raw.readableBytesView.firstRange(of: Array("\r\n".utf8)) {
                let sizeLine = raw.getString(at: raw.readerIndex, length: line.lowerBound - raw.readerIndex) ?? ""
                guard let size = Int(sizeLine, radix: 16), raw.readableBytes >= line.upperBound - raw.readerIndex + size + 2 else { break }
                raw.moveReaderIndex(to: line.upperBound)
                if size == 0 { ended = true; break }
                var chunk = raw.readSlice(length: size)!
                body.writeBuffer(&chunk)
                raw.moveReaderIndex(forwardBy: 2)
            }
            let boundary = Array("--framepipe\r\n".utf8)
            guard body.readableBytesView.starts(with: boundary) else { rest = body; return }
            body.moveReaderIndex(forwardBy: boundary.count)
            while let headersEnd = body.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) {
                let text = body.getString(at: body.readerIndex, length: headersEnd.lowerBound - body.readerIndex) ?? ""
                var headers: [String: String] = [:]
                for line in text.split(separator: "\r\n") {
                    let pair = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                    if pair.count == 2 { headers[pair[0]] = pair[1] }
                }
                guard let length = headers["Content-Length"].flatMap(Int.init),
                      body.readableBytes >= headersEnd.upperBound - body.readerIndex + length + 2 + boundary.count else { break }
                body.moveReaderIndex(to: headersEnd.upperBound)
                let jpeg = body.readSlice(length: length)!
                guard body.readString(length: 2 + boundary.count) == "\r\n--framepipe\r\n" else { break }
                parts.append(Part(headers: headers, jpeg: jpeg))
            }
            rest = body
        }
    }

    @Test func aClientGetsTheNewestFrameAtOnceEachNextWithItsBoundaryRightAfterAndTheEndOfTheStream() async throws {
        try await withRelay { relay in
            let streamer = try await relay.streamer("cam")
            let watcher = try await relay.viewer("format=binary")
            streamer.send(TestFrames.text(0, timestamp: 1000))
            try await watcher.eventually("the stream is live") { watcher.binaryFrames.count == 1 }
            let client = try await RawWebSocket.plain(port: relay.port)
            try await client.send(raw: "GET /api/streams/cam/mjpeg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            var received = ByteBuffer()
            func readUntil(_ condition: (Reading) -> Bool) async throws -> Reading {
                var reading = Reading(received)
                while !condition(reading) {
                    var more = try await client.readSome()
                    guard more.readableBytes > 0 else { break }
                    received.writeBuffer(&more)
                    reading = Reading(received)
                }
                return reading
            }
            // The newest frame, at once, without a new one coming.
            var reading = try await readUntil { $0.parts.count == 1 }
            #expect(reading.head.hasPrefix("HTTP/1.1 200"))
            #expect(reading.head.lowercased().contains("content-type: multipart/x-mixed-replace;boundary=framepipe"))
            #expect(reading.head.lowercased().contains("cache-control: no-cache"))
            #expect(reading.parts.first?.jpeg == TestFrames.jpeg(0))
            #expect(reading.parts.first?.headers["Content-Type"] == "image/jpeg")
            let receivedAt = try #require(watcher.binaryFrames.first?.header["received_at"]?.numberValue)
            #expect(reading.parts.first?.headers["X-Timestamp"] == String(format: "%.6f", receivedAt / 1000), "no camera clock yet: when the relay received it")
            // It counts as a viewer.
            let viewers = try await relay.api("/api/viewers")
            guard case .array(let list) = viewers else { Issue.record("no viewers"); return }
            #expect(list.contains { $0["format"] == .string("mjpeg") })
            // The next frame is whole, boundary included, before any frame after it is sent:
            // a client never shows a picture one frame late.
            streamer.send(TestFrames.text(1, timestamp: 1001))
            reading = try await readUntil { $0.parts.count == 2 }
            #expect(reading.parts.last?.jpeg == TestFrames.jpeg(1))
            // The stream ends: so does the response.
            await streamer.close()
            reading = try await readUntil(\.ended)
            #expect(reading.ended, "the response ended with the stream")
            try await relay.eventually("the MJPEG viewer is gone") {
                guard case .array(let list) = try await relay.api("/api/viewers") else { return false }
                return !list.contains { $0["format"] == .string("mjpeg") }
            }
        }
    }

    @Test func anUnknownStreamIsNotFoundAndABadParameterIsRefusedWithItsReason() async throws {
        try await withRelay { relay in
            let missing = try await RawHTTP.get(port: relay.port, path: "/api/streams/nope/mjpeg")
            #expect(missing.status == 404)
            #expect(missing.text.contains("no such stream"))
            let streamer = try await relay.streamer("cam")
            let watcher = try await relay.viewer("format=binary")
            streamer.send(TestFrames.text(0))
            try await watcher.eventually("the stream is live") { watcher.binaryFrames.count == 1 }
            for (query, reason) in [("fps=0", "fps must be"), ("width=wide", "width must be"), ("quality=best", "quality must be")] {
                let refused = try await RawHTTP.get(port: relay.port, path: "/api/streams/cam/mjpeg?\(query)")
                #expect(refused.status == 400, "\(query)")
                #expect(refused.text.contains(reason), "\(query): \(refused.text)")
            }
        }
    }

    /// With auth on it is a viewer route: no token, 401; a token as
    /// `?token=` (what VLC or an `<img>` can send) whose scope covers the
    /// stream, the stream; one whose scope does not, 404 as if it did not exist.
    @Test func withAuthOnItNeedsAViewerTokenThatCoversTheStream() async throws {
        let publisher = try await TestTokens.hs256(.streamer, ["*"])
        let wardA = try await TestTokens.hs256(.viewer, ["P-A-*"])
        try await withRelay(AuthTests.authed) { relay in
            let a = try await relay.streamer("P-A-1", token: publisher)
            let b = try await relay.streamer("P-B-1", token: publisher)
            a.send(TestFrames.jpeg(0)); b.send(TestFrames.jpeg(0))
            try await relay.eventually("both streams live") {
                let list = try await RawHTTP.get(port: relay.port, path: "/api/streams", headers: ["Authorization": "Bearer \(wardA)"])
                return list.text.contains("P-A-1")
            }
            #expect(try await RawHTTP.get(port: relay.port, path: "/api/streams/P-A-1/mjpeg").status == 401)
            #expect(try await RawHTTP.get(port: relay.port, path: "/api/streams/P-B-1/mjpeg?token=\(wardA)").status == 404)
            let client = try await RawWebSocket.plain(port: relay.port)
            try await client.send(raw: "GET /api/streams/P-A-1/mjpeg?token=\(wardA) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            let head = try await client.read { String(buffer: $0).contains("Content-Length") }
            #expect(String(buffer: head).hasPrefix("HTTP/1.1 200"))
            #expect(String(buffer: head).contains("--framepipe"))
            await client.drop()
        }
    }

    /// A revoked token ends its MJPEG response as it ends a socket.
    @Test func revokingTheTokenEndsTheResponse() async throws {
        let file = try TemporaryFile("revoked.jsonl")
        defer { file.remove() }
        let publisher = try await TestTokens.hs256(.streamer, ["*"])
        let token = try await TestTokens.hs256(.viewer, ["*"])
        try await withRelay(TokenLifetimeTests.authed(revocationFile: file.path)) { relay in
            let streamer = try await relay.streamer("cam", token: publisher)
            streamer.send(TestFrames.jpeg(0))
            let client = try await RawWebSocket.plain(port: relay.port)
            try await relay.eventually("the stream is live") {
                try await RawHTTP.get(port: relay.port, path: "/api/streams/cam/snapshot.jpg?token=\(token)").status == 200
            }
            try await client.send(raw: "GET /api/streams/cam/mjpeg?token=\(token) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            let head = try await client.read { String(buffer: $0).contains("Content-Length") }
            #expect(String(buffer: head).hasPrefix("HTTP/1.1 200"))
            let jti = TestTokens.claim("jti", of: token)!.stringValue!
            #expect(try await runFramepipe(["revoke", "--file", file.path, "--jti", jti]).status == 0)
            try await relay.eventually("the response is cut off") { !client.channelRef.isActive }
            #expect(relay.log.contains("MJPEG client left", ["reason": "token_revoked"]))
        }
    }
}

