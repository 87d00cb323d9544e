import NIOCore
import Pipeline

/// The Redis names a cluster of framepipe nodes shares. One Redis database
/// serves one cluster; `redis://host/N` keeps clusters apart.
enum ClusterKeys {
    /// Hash: stream id → "<owner node>\t<0|1 started>", the shared registry.
    static let streams = "framepipe:streams"
    /// Channel for claims, starts and ends; every node subscribes always.
    static let control = "framepipe:control"
    /// Channel carrying one stream's frames; subscribed while a node has a viewer for it.
    static func frames(_ streamID: String) -> String { "framepipe:frames:" + streamID }
    static let framesPrefix = "framepipe:frames:"
    /// Key with a TTL, renewed by a live node's heartbeat.
    static func node(_ nodeID: String) -> String { "framepipe:node:" + nodeID }

    /// The registry entry and its announcement change together (one script,
    /// so no node sees one without the other).
    static let claimScript = """
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '\\t' .. ARGV[3])
        redis.call('PUBLISH', KEYS[2], ARGV[4])
        return 1
        """
    /// Starts or ends a stream only if `ARGV[2]` still owns it: a node that
    /// was replaced (or declared lost) cannot undo the new owner's entry.
    static let startScript = """
        local v = redis.call('HGET', KEYS[1], ARGV[1])
        if v and string.sub(v, 1, #ARGV[2] + 1) == ARGV[2] .. '\\t' then
          redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '\\t1')
          redis.call('PUBLISH', KEYS[2], ARGV[3])
          return 1
        end
        return 0
        """
    static let endScript = """
        local v = redis.call('HGET', KEYS[1], ARGV[1])
        if v and string.sub(v, 1, #ARGV[2] + 1) == ARGV[2] .. '\\t' then
          redis.call('HDEL', KEYS[1], ARGV[1])
          redis.call('PUBLISH', KEYS[2], ARGV[3])
          return 1
        end
        return 0
        """

    /// A registry value, or nil if it is not one framepipe wrote.
    static func parseEntry(_ value: String) -> (owner: String, started: Bool)? {
        let parts = value.split(separator: "\t", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1] == "0" || parts[1] == "1" else { return nil }
        return (String(parts[0]), parts[1] == "1")
    }
}

/// What nodes tell each other on the control channel (small JSON objects).
enum ClusterEvent: Equatable, Sendable {
    /// `node` now serves `stream`; a node serving it locally is replaced.
    case claimed(stream: String, node: String, started: Bool)
    /// The stream's first valid frame arrived at `node`.
    case started(stream: String, node: String)
    /// `node`'s stream ended (for `node_lost`, another node said so).
    case ended(stream: String, node: String, reason: StreamEndReason)

    var json: String {
        switch self {
        case .claimed(let s, let n, let started):
            return #"{"type":"claimed","stream":\#(JSONValue.quoted(s)),"node":\#(JSONValue.quoted(n)),"started":\#(started)}"#
        case .started(let s, let n):
            return #"{"type":"started","stream":\#(JSONValue.quoted(s)),"node":\#(JSONValue.quoted(n))}"#
        case .ended(let s, let n, let reason):
            return #"{"type":"ended","stream":\#(JSONValue.quoted(s)),"node":\#(JSONValue.quoted(n)),"reason":"\#(reason.rawValue)"}"#
        }
    }

    struct Invalid: Error, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }

    init(json text: String) throws(Invalid) {
        let value: JSONValue
        do { value = try JSONParser.parse(text) } catch { throw Invalid(reason: "not JSON: \(error)") }
        guard let type = value["type"]?.stringValue else { throw Invalid(reason: "no \"type\"") }
        guard let stream = value["stream"]?.stringValue, StreamID.isValid(Substring(stream)) else { throw Invalid(reason: "\(type): bad or missing \"stream\"") }
        guard let node = value["node"]?.stringValue, ClusterSettings.isValidNodeID(node) else { throw Invalid(reason: "\(type): bad or missing \"node\"") }
        switch type {
        case "claimed":
            guard case .bool(let started)? = value["started"] else { throw Invalid(reason: "claimed: \"started\" must be true or false") }
            self = .claimed(stream: stream, node: node, started: started)
        case "started":
            self = .started(stream: stream, node: node)
        case "ended":
            guard let raw = value["reason"]?.stringValue, let reason = StreamEndReason(rawValue: raw) else {
                throw Invalid(reason: "ended: unknown reason")
            }
            self = .ended(stream: stream, node: node, reason: reason)
        default:
            throw Invalid(reason: "unknown type \"\(type.prefix(32))\"")
        }
    }
}

/// A frame as one node publishes it to the others: binary, never base64.
///
/// ```
/// "FPF" 0x01 | u8 n, node id | u8 n, stream id | u64 seq | u8 has-timestamp, i64 timestamp | JPEG…
/// ```
/// (integers big-endian). The `low` rendition is not sent: a receiving node
/// that has a slow viewer makes it itself (README, "Cluster").
struct ClusterFrameEnvelope: Equatable {
    var node: String
    var stream: String
    var seq: UInt64
    var timestamp: Int64?
    var jpeg: ByteBuffer

    static let magic: [UInt8] = [0x46, 0x50, 0x46, 0x01]  // "FPF", version 1

    func encode(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 4 + 2 + node.utf8.count + stream.utf8.count + 17 + jpeg.readableBytes)
        buffer.writeBytes(Self.magic)
        buffer.writeInteger(UInt8(node.utf8.count))
        buffer.writeString(node)
        buffer.writeInteger(UInt8(stream.utf8.count))
        buffer.writeString(stream)
        buffer.writeInteger(seq)
        buffer.writeInteger(UInt8(timestamp == nil ? 0 : 1))
        buffer.writeInteger(timestamp ?? 0)
        buffer.writeImmutableBuffer(jpeg)
        return buffer
    }

    struct Invalid: Error, Equatable, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }

    /// Reads an envelope; the JPEG shares the buffer's storage.
    init(decoding buffer: ByteBuffer) throws(Invalid) {
        var b = buffer
        guard b.readBytes(length: 4) == Self.magic else { throw Invalid(reason: "not a framepipe frame (bad magic or version)") }
        guard let nodeLength = b.readInteger(as: UInt8.self), let node = b.readString(length: Int(nodeLength)),
              ClusterSettings.isValidNodeID(node) else { throw Invalid(reason: "bad node id") }
        guard let streamLength = b.readInteger(as: UInt8.self), let stream = b.readString(length: Int(streamLength)),
              StreamID.isValid(Substring(stream)) else { throw Invalid(reason: "bad stream id") }
        guard let seq = b.readInteger(as: UInt64.self), let hasTimestamp = b.readInteger(as: UInt8.self),
              let timestamp = b.readInteger(as: Int64.self) else { throw Invalid(reason: "truncated header") }
        guard b.readableBytes > 0 else { throw Invalid(reason: "no JPEG") }
        self.init(node: node, stream: stream, seq: seq, timestamp: hasTimestamp == 1 ? timestamp : nil, jpeg: b)
    }

    init(node: String, stream: String, seq: UInt64, timestamp: Int64?, jpeg: ByteBuffer) {
        self.node = node
        self.stream = stream
        self.seq = seq
        self.timestamp = timestamp
        self.jpeg = jpeg
    }
}
