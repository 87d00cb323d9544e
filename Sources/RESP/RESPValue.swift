import NIOCore

/// One value of the Redis serialization protocol (RESP2), as Redis sends it.
///
/// framepipe speaks to Redis with its own small client (no Swift Redis
/// package is available here); this is the whole of the protocol it needs.
public enum RESPValue: Sendable, Equatable {
    case simpleString(String)
    /// `-ERR ...`: the server refused the command.
    case error(String)
    case integer(Int64)
    /// nil is RESP's null bulk string (`$-1`).
    case bulkString(ByteBuffer?)
    /// nil is RESP's null array (`*-1`).
    case array([RESPValue]?)

    /// The value as text, for simple and bulk strings.
    public var string: String? {
        switch self {
        case .simpleString(let s): return s
        case .bulkString(let b?): return String(buffer: b)
        default: return nil
        }
    }

    public var integer: Int64? {
        if case .integer(let n) = self { return n }
        return nil
    }

    public var array: [RESPValue]? {
        if case .array(let a?) = self { return a }
        return nil
    }

    public var bytes: ByteBuffer? {
        if case .bulkString(let b?) = self { return b }
        return nil
    }

    public var isNull: Bool {
        switch self {
        case .bulkString(nil), .array(nil): return true
        default: return false
        }
    }
}
