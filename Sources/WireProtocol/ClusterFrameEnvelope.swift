import Pipeline
import NIOCore

/// A frame as one node publishes it to the others: binary, never base64.
///
/// ```
/// "FPF" 0x02 | u8 n, node id | u8 n, stream id | u64 seq | u8 has-timestamp, i64 timestamp | i64 received_at | JPEG…
/// ```
/// (integers big-endian). `received_at` is when the serving node received
/// the frame, so viewers on every node see its true age (nodes' clocks are
/// assumed NTP-synchronised). Version 1, without it, is still read, from a
/// node not yet upgraded: such a frame counts as received on arrival here.
/// Only the full frame is sent: a receiving node makes the smaller rungs
/// its own viewers are sent (docs/cluster.md).
public struct ClusterFrameEnvelope: Equatable {
    public var node: String
    public var stream: String
    public var seq: UInt64
    public var timestamp: Int64?
    /// Nil only for a version-1 envelope (and then encoded as one, so every
    /// envelope read encodes back to the same bytes).
    public var receivedAt: Int64?
    public var jpeg: ByteBuffer

    public static let magic: [UInt8] = [0x46, 0x50, 0x46, 0x02]  // "FPF", version 2
    static let magicVersion1: [UInt8] = [0x46, 0x50, 0x46, 0x01]

    public func encode(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 4 + 2 + node.utf8.count + stream.utf8.count + 25 + jpeg.readableBytes)
        buffer.writeBytes(receivedAt == nil ? Self.magicVersion1 : Self.magic)
        buffer.writeInteger(UInt8(node.utf8.count))
        buffer.writeString(node)
        buffer.writeInteger(UInt8(stream.utf8.count))
        buffer.writeString(stream)
        buffer.writeInteger(seq)
        buffer.writeInteger(UInt8(timestamp == nil ? 0 : 1))
        buffer.writeInteger(timestamp ?? 0)
        if let receivedAt { buffer.writeInteger(receivedAt) }
        buffer.writeImmutableBuffer(jpeg)
        return buffer
    }

    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// Reads an envelope; the JPEG shares the buffer's storage.
    public init(decoding buffer: ByteBuffer) throws(Invalid) {
        var b = buffer
        let magic = b.readBytes(length: 4)
        guard magic == Self.magic || magic == Self.magicVersion1 else { throw Invalid(reason: "not a framepipe frame (bad magic or version)") }
        guard let nodeLength = b.readInteger(as: UInt8.self), let node = b.readString(length: Int(nodeLength)),
              NodeID.isValid(node) else { throw Invalid(reason: "bad node id") }
        guard let streamLength = b.readInteger(as: UInt8.self), let stream = b.readString(length: Int(streamLength)),
              StreamID.isValid(Substring(stream)) else { throw Invalid(reason: "bad stream id") }
        guard let seq = b.readInteger(as: UInt64.self), let hasTimestamp = b.readInteger(as: UInt8.self),
              let timestamp = b.readInteger(as: Int64.self) else { throw Invalid(reason: "truncated header") }
        // One encoding per envelope: found by fuzzing, a flag of 2 or a
        // timestamp beside a 0 flag was read as "no timestamp".
        guard hasTimestamp == 1 || (hasTimestamp == 0 && timestamp == 0) else { throw Invalid(reason: "bad timestamp flag") }
        var receivedAt: Int64?
        if magic == Self.magic {
            guard let stamp = b.readInteger(as: Int64.self) else { throw Invalid(reason: "truncated header") }
            guard stamp > 0 else { throw Invalid(reason: "bad received_at") }
            receivedAt = stamp
        }
        guard b.readableBytes > 0 else { throw Invalid(reason: "no JPEG") }
        self.init(node: node, stream: stream, seq: seq, timestamp: hasTimestamp == 1 ? timestamp : nil, receivedAt: receivedAt, jpeg: b)
    }

    public init(node: String, stream: String, seq: UInt64, timestamp: Int64?, receivedAt: Int64?, jpeg: ByteBuffer) {
        self.node = node
        self.stream = stream
        self.seq = seq
        self.timestamp = timestamp
        self.receivedAt = receivedAt
        self.jpeg = jpeg
    }
}
