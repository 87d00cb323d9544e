import NIOCore
import Pipeline
import WireProtocol

/// Which copy of a frame a viewer gets.
package enum RenditionKind: String, Sendable {
    case full, low
}

/// A frame serialized for the wire: one buffer per format and rendition,
/// made at most once per frame and handed to every viewer that wants it
/// (a `ByteBuffer` copy shares storage, so no viewer costs a byte copy).
///
/// A text frame that arrived as a data URL goes to JSON viewers verbatim;
/// binary bytes are base64-encoded once, only if some JSON viewer needs them.
package struct FrameEncoding {
    package let frame: Frame
    private(set) var cache: [Key: ByteBuffer?] = [:]

    package struct Key: Hashable {
        package var format: ViewerFormat
        package var rendition: RenditionKind
    }

    package init(frame: Frame) {
        self.frame = frame
    }

    /// The rendition a viewer that asked for `low` can actually get.
    package func available(_ wanted: RenditionKind) -> RenditionKind {
        wanted == .low && frame.lowRendition != nil ? .low : .full
    }

    /// The wire message, or nil if this frame cannot be sent in that form
    /// (a passthrough pipeline's undecodable data URL to a binary viewer).
    package mutating func message(format: ViewerFormat, rendition: RenditionKind) -> ByteBuffer? {
        let key = Key(format: format, rendition: rendition)
        if let cached = cache[key] { return cached }
        let built = build(key)
        cache[key] = built
        return built
    }

    private func build(_ key: Key) -> ByteBuffer? {
        let header = headerFields(rendition: key.rendition)
        switch key.format {
        case .json:
            var buffer = ByteBufferAllocator().buffer(capacity: frame.payloadSize * 4 / 3 + 200)
            buffer.writeString(#"{"type":"frame","#)
            buffer.writeString(header)
            buffer.writeString(#","frame":""#)
            if key.rendition == .low, let low = frame.lowRendition {
                buffer.writeString("data:image/jpeg;base64,")
                buffer.writeString(Base64.encode(low.jpeg))
            } else {
                switch frame.payload {
                case .dataURL(let url): buffer.writeString(url)
                case .binary(let bytes):
                    buffer.writeString("data:image/jpeg;base64,")
                    buffer.writeString(Base64.encode(bytes))
                }
            }
            buffer.writeString(#""}"#)
            return buffer
        case .binary:
            let jpeg: ByteBuffer
            if key.rendition == .low, let low = frame.lowRendition {
                jpeg = low.jpeg
            } else {
                var copy = frame
                guard let bytes = copy.resolveJPEG() else { return nil }
                jpeg = bytes
            }
            let json = #"{"type":"frame","# + header + "}"
            var buffer = ByteBufferAllocator().buffer(capacity: 2 + json.utf8.count + jpeg.readableBytes)
            buffer.writeInteger(UInt16(json.utf8.count), endianness: .big)
            buffer.writeString(json)
            buffer.writeImmutableBuffer(jpeg)
            return buffer
        }
    }

    /// `"stream_id":…,"seq":…,"timestamp":…,"received_at":…,"quality":…` in contract order.
    private func headerFields(rendition: RenditionKind) -> String {
        var s = #""stream_id":\#(JSONValue.quoted(frame.streamID)),"seq":\#(frame.seq)"#
        if let timestamp = frame.timestamp { s += #","timestamp":\#(timestamp)"# }
        s += #","received_at":\#(frame.receivedAt)"#
        s += #","quality":"\#(rendition.rawValue)""#
        return s
    }
}
