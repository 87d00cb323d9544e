import Foundation
import NIOCore

/// Reads JPEG parts out of a `multipart/x-mixed-replace` (or
/// `multipart/mixed`) body as it streams in: what ffmpeg's `-f mpjpeg`,
/// an IP camera or an ESP32-CAM sends to `POST /api/streams/{id}/ingest`.
///
/// A part with a `Content-Length` is whole once that many bytes arrived,
/// and is handed on then: a reader that waited for the next boundary (as a
/// generic multipart parser does) would hold every frame until the next
/// one, a second on a 1 fps camera. A part without one ends at the next
/// boundary. Header names in any case; parts before the first boundary,
/// CRLF or bare LF line ends, and a body that stops without a closing
/// boundary are all taken.
public struct MultipartFrameReader: Sendable {
    public enum Event: Equatable, Sendable {
        case part(ByteBuffer)
        /// The body cannot be read further: why, in a sentence.
        case invalid(String)
    }

    private enum State: Sendable {
        case preamble
        case headers
        case body(length: Int?)
        case afterBody
        case finished
    }

    private let delimiter: [UInt8]
    private let maxPartBytes: Int
    private var buffer = ByteBuffer()
    private var state = State.preamble

    /// `boundary` as the request's `Content-Type` names it.
    public init(boundary: String, maxPartBytes: Int) {
        // Some senders repeat the dashes in the header's boundary.
        let name = boundary.hasPrefix("--") ? String(boundary.dropFirst(2)) : boundary
        delimiter = Array("--\(name)".utf8)
        self.maxPartBytes = maxPartBytes
    }

    /// The boundary named by a `Content-Type` such as
    /// `multipart/x-mixed-replace; boundary="ffmpeg"`; nil if it is not multipart or names none.
    public static func boundary(ofContentType contentType: String) -> String? {
        let parts = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let kind = parts.first?.lowercased(), kind.hasPrefix("multipart/") else { return nil }
        for parameter in parts.dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).lowercased() == "boundary" else { continue }
            let value = pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
            return value.isEmpty || value.utf8.count > 200 ? nil : value
        }
        return nil
    }

    /// The boundary of a body that begins with its first delimiter line
    /// (`--ffmpeg`): for senders that name no type, or a wrong one (ffmpeg's
    /// HTTP output says `application/octet-stream`, as some cameras do).
    public static func boundary(openingBody first: ByteBuffer) -> String? {
        let view = first.readableBytesView
        guard view.starts(with: Array("--".utf8)), let lineEnd = view.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let line = String(decoding: view[(view.startIndex + 2)..<lineEnd], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return line.isEmpty || line.utf8.count > 200 ? nil : line
    }

    /// Takes more of the body; returns the parts it completed.
    public mutating func append(_ bytes: ByteBuffer) -> [Event] {
        guard !isDone else { return [] }
        var bytes = bytes
        buffer.writeBuffer(&bytes)
        var events: [Event] = []
        while let event = step() {
            events.append(event)
            if case .invalid = event { state = .finished; break }
        }
        if !isDone, buffer.readableBytes > maxPartBytes + 16 * 1024 {
            events.append(.invalid("a part is larger than the \(maxPartBytes)-byte limit, or its boundary never came"))
            state = .finished
        }
        buffer.discardReadBytes()
        return events
    }

    /// The body ended: a last part without a closing boundary is taken if whole.
    public mutating func finish() -> [Event] {
        defer { state = .finished }
        switch state {
        case .body(nil):
            var rest = buffer.readableBytesView[...]
            while let last = rest.last, last == UInt8(ascii: "\r") || last == UInt8(ascii: "\n") { rest = rest.dropLast() }
            return rest.isEmpty ? [] : [.part(ByteBuffer(bytes: rest))]
        case .body(let length?) where buffer.readableBytes < length:
            return [.invalid("the body ended \(length - buffer.readableBytes) bytes into a part's \(length)")]
        default:
            return []
        }
    }

    private var isDone: Bool { if case .finished = state { true } else { false } }

    /// One step forward, or nil when more bytes are needed.
    private mutating func step() -> Event? {
        while true {
            switch state {
            case .preamble:
                // The first delimiter, at the start of a line, wherever it is.
                guard let found = find(delimiter) else { return nil }
                guard let lineEnd = find([UInt8(ascii: "\n")], from: found + delimiter.count) else { return nil }
                buffer.moveReaderIndex(to: lineEnd + 1)
                state = .headers
            case .headers:
                guard let (length, headersEnd) = readHeaders() else { return nil }
                if case .invalid(let reason)? = length { return .invalid(reason) }
                buffer.moveReaderIndex(to: headersEnd)
                if case .length(let n)? = length {
                    guard n <= maxPartBytes else { return .invalid("a part of \(n) bytes is over the \(maxPartBytes)-byte limit") }
                    state = .body(length: n)
                } else {
                    state = .body(length: nil)
                }
            case .body(let length?):
                guard buffer.readableBytes >= length else { return nil }
                let part = buffer.readSlice(length: length)!
                state = .afterBody
                return .part(part)
            case .body(nil):
                guard let found = find(delimiter) else { return nil }
                var end = found
                // The line break before the delimiter belongs to it.
                if end > buffer.readerIndex, buffer.getInteger(at: end - 1, as: UInt8.self) == UInt8(ascii: "\n") { end -= 1 }
                if end > buffer.readerIndex, buffer.getInteger(at: end - 1, as: UInt8.self) == UInt8(ascii: "\r") { end -= 1 }
                let part = buffer.readSlice(length: end - buffer.readerIndex)!
                buffer.moveReaderIndex(to: found)
                state = .afterBody
                return .part(part)
            case .afterBody:
                // Line breaks, then the delimiter: `--` after it ends the body.
                while let byte = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
                      byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n") {
                    buffer.moveReaderIndex(forwardBy: 1)
                }
                guard buffer.readableBytes >= delimiter.count + 2 else { return nil }
                guard buffer.readableBytesView.starts(with: delimiter) else {
                    return .invalid("a part is not followed by the boundary \(String(decoding: delimiter, as: UTF8.self))")
                }
                let after = buffer.readerIndex + delimiter.count
                if buffer.getString(at: after, length: 2) == "--" {
                    state = .finished
                    return nil
                }
                guard let lineEnd = find([UInt8(ascii: "\n")], from: after) else { return nil }
                buffer.moveReaderIndex(to: lineEnd + 1)
                state = .headers
            case .finished:
                return nil
            }
        }
    }

    private enum Length { case length(Int), invalid(String) }

    /// The part's headers up to their blank line: its `Content-Length` if
    /// any, and where the body starts; nil until the blank line came.
    private func readHeaders() -> (Length?, Int)? {
        var index = buffer.readerIndex
        var length: Length?
        let end = buffer.writerIndex
        while index < end {
            guard let lineEnd = find([UInt8(ascii: "\n")], from: index) else { return nil }
            var lineStop = lineEnd
            if lineStop > index, buffer.getInteger(at: lineStop - 1, as: UInt8.self) == UInt8(ascii: "\r") { lineStop -= 1 }
            if lineStop == index { return (length, lineEnd + 1) }  // the blank line
            if lineStop - index > 1024 { return (.invalid("a part header line is over 1024 bytes"), lineEnd + 1) }
            let line = buffer.getString(at: index, length: lineStop - index) ?? ""
            let pair = line.split(separator: ":", maxSplits: 1)
            if pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).lowercased() == "content-length" {
                let value = pair[1].trimmingCharacters(in: .whitespaces)
                if let n = Int(value), n >= 0 { length = .length(n) } else { length = .invalid("a part's Content-Length is not a number: \"\(value.prefix(32))\"") }
            }
            index = lineEnd + 1
        }
        return buffer.readableBytes > 16 * 1024 ? (.invalid("a part's headers are over 16 KB"), end) : nil
    }

    private func find(_ needle: [UInt8], from start: Int? = nil) -> Int? {
        let from = start ?? buffer.readerIndex
        guard from <= buffer.writerIndex else { return nil }
        let view = buffer.readableBytesView
        let offset = from - buffer.readerIndex
        guard let range = view[(view.startIndex + offset)...].firstRange(of: needle) else { return nil }
        return buffer.readerIndex + (range.lowerBound - view.startIndex)
    }
}
