import NIOCore
import Testing
@testable import WireProtocol

/// What HTTP ingest reads parts with, fed the ways senders write and the
/// network splits their bodies.
@Suite("Multipart frame reader")
struct MultipartFrameReaderTests {
    static func parts(_ events: [MultipartFrameReader.Event]) -> [String] {
        events.map { if case .part(let bytes) = $0 { String(buffer: bytes) } else { "\($0)" } }
    }

    /// Every way of cutting `body` into two pieces gives the same parts.
    static func read(_ body: String, boundary: String = "ffmpeg", finish: Bool = true) -> [[String]] {
        let bytes = Array(body.utf8)
        return (0...bytes.count).map { cut in
            var reader = MultipartFrameReader(boundary: boundary, maxPartBytes: 1_000)
            var events = reader.append(ByteBuffer(bytes: bytes[..<cut]))
            events += reader.append(ByteBuffer(bytes: bytes[cut...]))
            if finish { events += reader.finish() }
            return parts(events)
        }
    }

    @Test func ffmpegsMpjpegWithLengthsAndNoClosingBoundary() {
        let body = "--ffmpeg\r\nContent-type: image/jpeg\r\nContent-length: 5\r\n\r\nAAAAA\r\n--ffmpeg\r\nContent-type: image/jpeg\r\nContent-length: 3\r\n\r\nBBB\r\n"
        #expect(Set(Self.read(body)) == [["AAAAA", "BBB"]])
    }

    @Test func aPartWithALengthIsHandedOnBeforeTheNextBoundaryComes() {
        var reader = MultipartFrameReader(boundary: "b", maxPartBytes: 100)
        let events = reader.append(ByteBuffer(string: "--b\r\nCONTENT-LENGTH: 4\r\n\r\nJPEG"))
        #expect(Self.parts(events) == ["JPEG"])
    }

    @Test func partsWithoutLengthsEndAtTheBoundaryAndTheClosingBoundaryEndsTheBody() {
        let body = "preamble\r\n--b\r\nContent-Type: image/jpeg\r\n\r\nONE\r\n--b\nContent-Type: image/jpeg\n\nTWO\n--b--\r\nepilogue"
        #expect(Set(Self.read(body, boundary: "b")) == [["ONE", "TWO"]])
    }

    @Test func aLastPartWithoutLengthOrClosingBoundaryIsTakenWhenTheBodyEnds() {
        #expect(Set(Self.read("--b\r\n\r\nONE\r\n--b\r\n\r\nLAST\r\n", boundary: "b")) == [["ONE", "LAST"]])
        #expect(Set(Self.read("--b\r\n\r\nONE\r\n--b\r\n\r\nLAST\r\n", boundary: "b", finish: false)) == [["ONE"]])
    }

    @Test func aBodyThatBreaksItsOwnRulesIsRefusedWithWhy() {
        var reader = MultipartFrameReader(boundary: "b", maxPartBytes: 10)
        #expect(Self.parts(reader.append(ByteBuffer(string: "--b\r\nContent-Length: 11\r\n\r\n"))) == [#"invalid("a part of 11 bytes is over the 10-byte limit")"#])
        #expect(reader.append(ByteBuffer(string: "more")).isEmpty, "nothing after the body was refused")
        var junk = MultipartFrameReader(boundary: "b", maxPartBytes: 10)
        #expect(Self.parts(junk.append(ByteBuffer(string: "--b\r\nContent-Length: 2\r\n\r\nOKgarbage--b\r\n"))) == ["OK", #"invalid("a part is not followed by the boundary --b")"#])
        var cut = MultipartFrameReader(boundary: "b", maxPartBytes: 10)
        _ = cut.append(ByteBuffer(string: "--b\r\nContent-Length: 8\r\n\r\nHALF"))
        #expect(Self.parts(cut.finish()) == [#"invalid("the body ended 4 bytes into a part\'s 8")"#])
        var endless = MultipartFrameReader(boundary: "b", maxPartBytes: 10)
        let events = endless.append(ByteBuffer(string: "--b\r\n\r\n" + String(repeating: "x", count: 20_000)))
        #expect(Self.parts(events).first?.contains("larger than the 10-byte limit") == true)
    }

    @Test func theBoundaryIsReadFromTheContentType() {
        #expect(MultipartFrameReader.boundary(ofContentType: "multipart/x-mixed-replace;boundary=ffmpeg") == "ffmpeg")
        #expect(MultipartFrameReader.boundary(ofContentType: #"Multipart/Mixed; charset=x; Boundary="a b""#) == "a b")
        #expect(MultipartFrameReader.boundary(ofContentType: "image/jpeg") == nil)
        #expect(MultipartFrameReader.boundary(ofContentType: "multipart/x-mixed-replace") == nil)
    }
}
