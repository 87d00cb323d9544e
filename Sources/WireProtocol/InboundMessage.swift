import Pipeline

// The wire contract's inbound side, kept apart from the server so the
// fuzz targets (Fuzz/) can drive exactly the parser the relay runs, without
// building the HTTP stack.

/// A message a client sent, parsed far enough to act on it.
public enum InboundMessage: Sendable {
    case frame(Frame)
    case ping
    case pong
    /// A streamer's answer to the relay's clock ping: the relay's time it
    /// echoes and its own clock's, from which the relay learns the offset.
    case clockPong(serverTime: Int64, clientTime: Int64)
    case subscribe([String]?)
    case setQuality(QualityPreference)
    /// A viewer with `flow=credit` has drawn this stream's frames up to `seq`.
    case ack(streamID: String, seq: UInt64)
    /// What a viewer shows of a stream: its drawn size in device pixels
    /// (nil when not said) and whether it is visible at all.
    case view(streamID: String, width: Int?, height: Int?, visible: Bool)
    /// A fresh token for the open socket, before the one it connected with expires.
    case refresh(token: String)
    /// Valid JSON with a `type` this endpoint does not know.
    case unknownType(String)
    /// Not a usable message; the reason is said to the client and, for a
    /// streamer, counted as a bad frame.
    case invalid(Rejection)

    /// Parses a streamer's text message; `seq` and `arrival` are stamped on frames.
    public static func streamer(text: String, streamID: String, seq: UInt64, arrival: ContinuousClock.Instant) -> InboundMessage {
        let json: JSONValue
        do {
            json = try JSONParser.parse(text)
        } catch {
            return .invalid(Rejection.message(code: "invalid_json", detail: "message is not JSON: \(error)"))
        }
        guard case .string(let type)? = json["type"] else {
            return .invalid(Rejection.message(code: "no_type", detail: #"message has no "type" string"#))
        }
        switch type {
        case "frame":
            guard let payload = json["frame"] else {
                return .invalid(Rejection.message(code: "no_frame", detail: #"frame message has no "frame" field"#))
            }
            guard case .string(let url) = payload else {
                return .invalid(Rejection.message(code: "frame_not_string", detail: #""frame" is a \#(payload.typeName), not a data URL string"#))
            }
            guard url.utf8.starts(with: "data:image".utf8) else {
                return .invalid(Rejection.message(code: "not_data_url", detail: #""frame" does not start with "data:image""#))
            }
            var timestamp: Int64?
            if case .number(let t)? = json["timestamp"], t == t.rounded(), abs(t) < 9e15 { timestamp = Int64(t) }
            return .frame(Frame(streamID: streamID, seq: seq, arrival: arrival, timestamp: timestamp, payload: .dataURL(url)))
        case "ping":
            return .ping
        case "pong":
            guard let server = wholeMilliseconds(json["server_time"]), let client = wholeMilliseconds(json["client_time"]) else { return .pong }
            return .clockPong(serverTime: server, clientTime: client)
        case "refresh":
            return refresh(json)
        default:
            return .unknownType(type)
        }
    }

    /// A time in whole ms since the epoch, or nil.
    static func wholeMilliseconds(_ value: JSONValue?) -> Int64? {
        guard case .number(let t)? = value, t == t.rounded(), abs(t) < 9e15 else { return nil }
        return Int64(t)
    }

    /// `{"type":"refresh","token":…}`, from either kind of client.
    static func refresh(_ json: JSONValue) -> InboundMessage {
        guard let token = json["token"]?.stringValue, !token.isEmpty else {
            return .invalid(Rejection.message(code: "bad_refresh", detail: #""token" must be a non-empty string"#))
        }
        return .refresh(token: token)
    }

    /// `{"type":"view","stream_id":…,"width":…,"height":…,"visible":…}`;
    /// every field but `stream_id` may be left out (visible by default).
    static func view(_ json: JSONValue) -> InboundMessage {
        guard let stream = json["stream_id"]?.stringValue, StreamID.isValid(Substring(stream)) else {
            return .invalid(Rejection.message(code: "bad_view", detail: #""stream_id" must be a stream id"#))
        }
        var size: [Int?] = []
        for field in ["width", "height"] {
            switch json[field] {
            case nil, .null?: size.append(nil)
            case .number(let n)? where n >= 0 && n <= 65_535 && n == n.rounded(): size.append(Int(n))
            default:
                return .invalid(Rejection.message(code: "bad_view", detail: #""\#(field)" must be a whole number of device pixels, 0 to 65535"#))
            }
        }
        var visible = true
        switch json["visible"] {
        case nil: break
        case .bool(let b)?: visible = b
        default: return .invalid(Rejection.message(code: "bad_view", detail: #""visible" must be true or false"#))
        }
        return .view(streamID: stream, width: size[0], height: size[1], visible: visible)
    }

    /// Parses a viewer's text message.
    public static func viewer(text: String) -> InboundMessage {
        guard let json = try? JSONParser.parse(text), case .string(let type)? = json["type"] else {
            return .invalid(Rejection.message(code: "invalid_json", detail: #"expected a JSON object with a "type""#))
        }
        switch type {
        case "ping": return .ping
        case "pong": return .pong
        case "subscribe":
            guard case .array(let items)? = json["streams"] else {
                return .invalid(Rejection.message(code: "bad_subscribe", detail: #""streams" must be an array of stream ids"#))
            }
            let ids = items.compactMap(\.stringValue)
            guard ids.count == items.count else {
                return .invalid(Rejection.message(code: "bad_subscribe", detail: #""streams" must be an array of stream ids"#))
            }
            return .subscribe(ids)
        case "set_quality":
            guard let raw = json["quality"]?.stringValue, let quality = QualityPreference(rawValue: raw) else {
                return .invalid(Rejection.message(code: "bad_quality", detail: #""quality" must be "auto", "full" or "low""#))
            }
            return .setQuality(quality)
        case "refresh":
            return refresh(json)
        case "ack":
            guard let stream = json["stream_id"]?.stringValue, StreamID.isValid(Substring(stream)) else {
                return .invalid(Rejection.message(code: "bad_ack", detail: #""stream_id" must be a stream id"#))
            }
            guard let seq = json["seq"]?.numberValue, seq >= 0, seq == seq.rounded(), seq < 9e15 else {
                return .invalid(Rejection.message(code: "bad_ack", detail: #""seq" must be a whole number ≥ 0"#))
            }
            return .ack(streamID: stream, seq: UInt64(seq))
        case "view":
            return view(json)
        default:
            return .unknownType(type)
        }
    }
}

/// How a viewer receives frames.
public enum ViewerFormat: String, Sendable {
    case json, binary
    /// `GET /api/streams/{id}/mjpeg`: multipart parts of an HTTP response, never a WebSocket's.
    case mjpeg
    /// The same for a browser: each part's headers are sent ahead, right
    /// after the boundary that ends the part before (`MJPEGWire`).
    case mjpegHeadersAhead = "mjpeg-headers-ahead"

    /// Frames in an HTTP response, with no place for the relay's text messages.
    public var isMJPEG: Bool { self == .mjpeg || self == .mjpegHeadersAhead }
}
