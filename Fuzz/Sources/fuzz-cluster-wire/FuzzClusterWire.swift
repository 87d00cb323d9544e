import NIOCore
import WireProtocol

/// What a node reads from Redis: frame envelopes (binary) and control
/// events (JSON text). Any bytes must decode to a value or a clear error,
/// never a crash; a decoded envelope must encode back to the bytes it was
/// read from, and a decoded event to JSON that decodes to the same event.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let buffer = ByteBuffer(bytes: bytes)
    if let envelope = try? ClusterFrameEnvelope(decoding: buffer), envelope.encode() != buffer {
        fatalError("envelope does not round-trip: \(envelope.node) \(envelope.stream) \(envelope.seq)")
    }
    let text = String(decoding: bytes, as: UTF8.self)
    if let event = try? ClusterEvent(json: text), (try? ClusterEvent(json: event.json)) != event {
        fatalError("event does not round-trip: \(event)")
    }
    return 0
}
