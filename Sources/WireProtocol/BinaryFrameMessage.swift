import NIOCore
import Pipeline

/// A streamer's binary message: the raw JPEG, as it always was, or the
/// same JPEG behind a small JSON header that carries its capture time,
/// laid out like a binary viewer frame (2-byte big-endian length N, N
/// bytes of JSON, then the JPEG).
///
/// The two cannot be confused: a JPEG starts with 0xFF, and a header is at
/// most `maxHeaderBytes` long, so its length's first byte is never 0xFF.
public enum BinaryFrameMessage {
    /// Long enough for `{"timestamp":…}` and a few fields more; short enough
    /// that the length's high byte (≤ 0x10) can never be a JPEG's 0xFF.
    public static let maxHeaderBytes = 4096

    public enum Parsed {
        /// The JPEG bytes (not yet checked: the pipeline does that), with the
        /// sender's capture time when the header gave one.
        case frame(jpeg: ByteBuffer, timestamp: Int64?)
        /// A header that cannot be read; the reason is said to the streamer.
        case invalid(Rejection)
    }

    /// A message is taken for a header only when it looks like one: a
    /// length of 1…`maxHeaderBytes` followed by `{`. Anything else goes to
    /// the pipeline as it is, which says what is wrong with it (`not_jpeg`,
    /// as before there were headers).
    public static func parse(_ message: ByteBuffer) -> Parsed {
        var bytes = message
        guard let length = bytes.readInteger(endianness: .big, as: UInt16.self), length > 0, Int(length) <= maxHeaderBytes,
              bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) == UInt8(ascii: "{")
        else {
            return .frame(jpeg: message, timestamp: nil)
        }
        guard let text = bytes.readString(length: Int(length)) else {
            return .invalid(bad("the binary frame's header says \(length) bytes but the message is shorter"))
        }
        guard let header = try? JSONParser.parse(text), case .object = header else {
            return .invalid(bad("the binary frame's header is not a JSON object"))
        }
        var timestamp: Int64?
        switch header["timestamp"] {
        case nil, .null?: break
        case .number(let t)? where t == t.rounded() && abs(t) < 9e15: timestamp = Int64(t)
        default: return .invalid(bad(#"the binary frame header's "timestamp" must be whole milliseconds since the epoch"#))
        }
        return .frame(jpeg: bytes, timestamp: timestamp)
    }

    private static func bad(_ detail: String) -> Rejection {
        Rejection.message(code: "bad_binary_header", detail: detail)
    }
}
