import NIOCore

/// A server-to-client WebSocket message as the bytes that go on the wire:
/// header and payload in one buffer.
///
/// A message from the server is not masked, so it is the same bytes for
/// every viewer: built once per frame, format and rendition, it is written
/// as it is to every viewer's socket, below NIO's `WebSocketFrameEncoder`,
/// instead of that encoder writing a header buffer and the payload for
/// each viewer (two buffers, a header allocation and the handlers between
/// the tail of the pipeline and the socket, per viewer and frame).
enum WebSocketWire {
    enum Opcode: UInt8 {
        case text = 0x1, binary = 0x2, ping = 0x9
    }

    /// The Ping written after frames to a paced reader (`ViewerLink.readerPaced`):
    /// a client answers a Ping when it reads it (RFC 6455, 5.5.2), so its
    /// Pong says the frames before it were read. Its payload tells it from
    /// the keep-alive pings.
    static let readProbePayload = Array("framepipe-read".utf8)
    static let readProbe = message(.ping, payloadLength: readProbePayload.count) { $0.writeBytes(readProbePayload) }

    /// The header's size for a payload of `length` bytes.
    static func headerSize(payloadLength length: Int) -> Int {
        length < 126 ? 2 : length <= Int(UInt16.max) ? 4 : 10
    }

    /// A final, unmasked message of `payloadLength` bytes, which `writePayload`
    /// must write in full.
    static func message(_ opcode: Opcode, payloadLength: Int, writePayload: (inout ByteBuffer) -> Void) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: headerSize(payloadLength: payloadLength) + payloadLength)
        writeHeader(opcode, payloadLength: payloadLength, into: &buffer)
        let start = buffer.writerIndex
        writePayload(&buffer)
        precondition(buffer.writerIndex - start == payloadLength, "a WebSocket payload must be the length its header says")
        return buffer
    }

    /// A final, unmasked text message.
    static func text(_ text: String) -> ByteBuffer {
        message(.text, payloadLength: text.utf8.count) { $0.writeString(text) }
    }

    private static func writeHeader(_ opcode: Opcode, payloadLength length: Int, into buffer: inout ByteBuffer) {
        buffer.writeInteger(0x80 | opcode.rawValue)  // FIN
        if length < 126 {
            buffer.writeInteger(UInt8(length))
        } else if length <= Int(UInt16.max) {
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(length), endianness: .big)
        } else {
            buffer.writeInteger(UInt8(127))
            buffer.writeInteger(UInt64(length), endianness: .big)
        }
    }

    /// The payload of a message built here (for tests and logs).
    static func payload(of wire: ByteBuffer) -> ByteBuffer {
        var wire = wire
        guard let _ = wire.readInteger(as: UInt8.self), let short = wire.readInteger(as: UInt8.self) else { return wire }
        switch short & 0x7F {
        case 126: _ = wire.readInteger(endianness: .big, as: UInt16.self)
        case 127: _ = wire.readInteger(endianness: .big, as: UInt64.self)
        default: break
        }
        return wire
    }
}
