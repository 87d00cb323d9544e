import NIOCore
import NIOEmbedded
import NIOWebSocket
@testable import RelayCore
@testable import RelayRules
import Testing

/// The messages the relay builds once per frame are what NIO's own
/// WebSocket decoder reads, at every header size.
@Suite("WebSocket wire messages")
struct WebSocketWireTests {
    static func decoded(_ wire: ByteBuffer) throws -> WebSocketFrame? {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1 << 20)))
        try channel.writeInbound(wire)
        return try channel.readInbound(as: WebSocketFrame.self)
    }

    @Test(arguments: [0, 1, 125, 126, 127, 65_535, 65_536, 200_000])
    func aBinaryMessageOfAnyLengthDecodesToItsPayload(length: Int) throws {
        let payload = ByteBuffer(bytes: (0..<length).map { UInt8(truncatingIfNeeded: $0 * 7) })
        let wire = WebSocketWire.message(.binary, payloadLength: length) { $0.writeImmutableBuffer(payload) }
        #expect(wire.readableBytes == WebSocketWire.headerSize(payloadLength: length) + length)
        let frame = try #require(try Self.decoded(wire))
        #expect(frame.fin && frame.opcode == .binary && frame.maskKey == nil)
        #expect(frame.data == payload)
        #expect(WebSocketWire.payload(of: wire) == payload)
    }

    @Test func aTextMessageDecodesToItsText() throws {
        let wire = WebSocketWire.text(#"{"type":"stream_started","stream_id":"bed-4 – süd"}"#)
        let frame = try #require(try Self.decoded(wire))
        #expect(frame.opcode == .text)
        #expect(String(buffer: frame.data) == #"{"type":"stream_started","stream_id":"bed-4 – süd"}"#)
    }
}
