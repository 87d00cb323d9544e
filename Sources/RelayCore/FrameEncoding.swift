import NIOCore
import RelayRules
import Pipeline
import WireProtocol

/// A frame serialized for the wire: one buffer per format and rendition,
/// the whole WebSocket message (`WebSocketWire`) or MJPEG part
/// (`MJPEGWire`), made at most once per
/// frame and written as it is to every viewer that wants it (a `ByteBuffer`
/// copy shares storage, so no viewer costs a byte copy or a header).
///
/// A text frame that arrived as a data URL goes to JSON viewers verbatim;
/// binary bytes are base64-encoded once, only if some JSON viewer needs them.
struct FrameEncoding {
    let frame: Frame
    /// Sent again from the relay's cache (a tile that became visible), not as it arrived: `"cached": true`.
    let cached: Bool
    private(set) var cache: [Key: ByteBuffer?] = [:]

    struct Key: Hashable {
        var format: ViewerFormat
        package var rendition: RenditionKind
        /// The header names the stream as `patient_id` too (`compat=patient_id`).
        var namingPatient = false
    }

    init(frame: Frame, cached: Bool = false) {
        self.frame = frame
        self.cached = cached
    }

    /// The rendition a viewer can actually get: the one it is due if this
    /// frame has it, else the nearest one made (the smaller on a tie: the
    /// policy had just stepped down), else full. A rendition chosen a
    /// moment ago may not be made until the next frame.
    func available(_ wanted: RenditionKind) -> RenditionKind {
        guard wanted.rung > 0 else { return .full }
        // Nearest first; on a tie the higher rung (the smaller picture).
        let nearest = frame.renditions.map(\.rung).min { (abs($0 - wanted.rung), -$0) < (abs($1 - wanted.rung), -$1) }
        return nearest.map(RenditionKind.init(rung:)) ?? .full
    }

    /// The WebSocket message, or nil if this frame cannot be sent in that form
    /// (a passthrough pipeline's undecodable data URL to a binary viewer).
    mutating func message(format: ViewerFormat, rendition: RenditionKind, namingPatient: Bool = false) -> ByteBuffer? {
        let key = Key(format: format, rendition: rendition, namingPatient: namingPatient && !format.isMJPEG)
        if let cached = cache[key] { return cached }
        let built = build(key)
        cache[key] = built
        return built
    }

    private func build(_ key: Key) -> ByteBuffer? {
        let header = headerFields(rendition: key.rendition, namingPatient: key.namingPatient)
        switch key.format {
        case .json:
            let open = #"{"type":"frame","# + header + #","frame":""#, close = #""}"#
            let picture: (prefix: String, body: String)
            if let smaller = rendition(key.rendition) {
                picture = ("data:image/jpeg;base64,", Base64.encode(smaller.jpeg))
            } else {
                switch frame.payload {
                case .dataURL(let url): picture = ("", url)
                case .binary(let bytes): picture = ("data:image/jpeg;base64,", Base64.encode(bytes))
                }
            }
            let length = open.utf8.count + picture.prefix.utf8.count + picture.body.utf8.count + close.utf8.count
            return WebSocketWire.message(.text, payloadLength: length) { buffer in
                buffer.writeString(open)
                buffer.writeString(picture.prefix)
                buffer.writeString(picture.body)
                buffer.writeString(close)
            }
        case .binary:
            guard let jpeg = jpeg(key.rendition) else { return nil }
            let json = #"{"type":"frame","# + header + "}"
            return WebSocketWire.message(.binary, payloadLength: 2 + json.utf8.count + jpeg.readableBytes) { buffer in
                buffer.writeInteger(UInt16(json.utf8.count), endianness: .big)
                buffer.writeString(json)
                buffer.writeImmutableBuffer(jpeg)
            }
        case .mjpeg, .mjpegHeadersAhead:
            guard let jpeg = jpeg(key.rendition) else { return nil }
            return MJPEGWire.part(jpeg: jpeg, timestampMilliseconds: frame.capturedAt ?? frame.receivedAt,
                                  headersAhead: key.format == .mjpegHeadersAhead)
        }
    }

    /// The JPEG of a rendition; nil for a passthrough pipeline's undecodable data URL.
    private func jpeg(_ kind: RenditionKind) -> ByteBuffer? {
        if let smaller = rendition(kind) { return smaller.jpeg }
        var copy = frame
        return copy.resolveJPEG()
    }

    private func rendition(_ kind: RenditionKind) -> Rendition? {
        kind.rung == 0 ? nil : frame.rendition(rung: kind.rung)
    }

    /// `"stream_id":…,"seq":…,"timestamp":…,"received_at":…,"captured_at":…,"quality":…` in
    /// contract order; a smaller rendition adds its scale and size, a
    /// replayed frame `"cached":true`.
    private func headerFields(rendition kind: RenditionKind, namingPatient: Bool) -> String {
        var s = #""stream_id":\#(JSONValue.quoted(frame.streamID))"#
        if namingPatient { s += #","patient_id":\#(JSONValue.quoted(frame.streamID))"# }
        s += #","seq":\#(frame.seq)"#
        if let timestamp = frame.timestamp { s += #","timestamp":\#(timestamp)"# }
        s += #","received_at":\#(frame.receivedAt)"#
        if let capturedAt = frame.capturedAt { s += #","captured_at":\#(capturedAt)"# }
        s += #","quality":"\#(kind.quality)""#
        if let smaller = rendition(kind) {
            let label = frame.ladder?.label(ofRung: kind.rung) ?? "low"
            s += #","rendition":"\#(label)","width":\#(smaller.width),"height":\#(smaller.height)"#
        }
        if cached { s += #","cached":true"# }
        return s
    }
}
