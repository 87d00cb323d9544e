@testable import FramepipeServer
import NIOCore
@testable import Pipeline
import Testing

/// A viewer that has not read the frames last written to it is written no
/// more until it has, then gets the newest (docs/design.md, "A reader is
/// paced until it shows it keeps up"). Through a real relay and a client
/// that answers the relay's read probe only when the test says it has read.
@Suite("Paced readers")
struct PacedReaderTests {
    @Test func aReaderIsSentTheNewestFrameOnceItHasReadTheLastAndNothingBefore() async throws {
        // The raw viewer leaves its frame unread on purpose for as long as the test takes; the
        // stall rule (3 of its read intervals, at least the send timeout, on real time) is not what
        // this tests, so it must not drop the viewer on a loaded machine. With the default 1 s it
        // did in a load check; a 5 s pause before the barrier shows the same, and passes with this.
        try await withRelay(.test { $0.viewerSendTimeout = .seconds(60) }) { relay in
            let raw = try await RawWebSocket.connect(port: relay.port, path: "/ws/viewer?format=binary")
            let watcher = try await relay.viewer("format=binary")
            try await watcher.waitFor(type: "viewer_connected")
            let streamer = try await relay.streamer("cam")
            func timestamp(_ payload: ByteBuffer) -> Double? {
                var bytes = payload
                guard let n = bytes.readInteger(endianness: .big, as: UInt16.self), let text = bytes.readString(length: Int(n)) else { return nil }
                return (try? JSONParser.parse(text))?["timestamp"]?.numberValue
            }
            /// The next frames up to a binary one, with the text messages before it.
            func nextFrame() async throws -> (texts: [String], frame: ByteBuffer, then: (opcode: UInt8, payload: ByteBuffer)) {
                var texts: [String] = []
                while true {
                    let frame = try await raw.readFrame()
                    if frame.opcode == 0x1 { texts.append(String(buffer: frame.payload)); continue }
                    if frame.opcode == 0x2 { return (texts, frame.payload, try await raw.readFrame()) }
                }
            }
            streamer.send(TestFrames.text(0, timestamp: 1000))
            let first = try await nextFrame()
            #expect(timestamp(first.frame) == 1000)
            #expect(first.then.opcode == 0x9 && Array(first.then.payload.readableBytesView) == Array("framepipe-read".utf8),
                    "a new viewer's frame is followed by a read probe")
            // Five more while it has not answered: the watcher, which answers, sees them all arrive.
            for i in 1...5 { streamer.send(TestFrames.text(i, timestamp: 1000 + Int64(i))) }
            try await watcher.eventually("the watcher has the fifth") { watcher.binaryFrames.last?.header["timestamp"] == .number(1005) }
            // A barrier: a second stream's start is a control message, which is not held, and it
            // was queued after the five frames; no frame may come before it.
            let other = try await relay.streamer("cam-2")
            other.send(TestFrames.text(0, timestamp: 2000))
            let barrier = try await raw.readFrame()
            #expect(barrier.opcode == 0x1 && String(buffer: barrier.payload).contains(#""stream_started""#),
                    "nothing but control messages while its last frame is unread: \(barrier.opcode) \(String(buffer: barrier.payload).prefix(80))")
            try await raw.sendPong(Array("framepipe-read".utf8))
            let next = try await nextFrame()
            let seen = [timestamp(next.frame)] + (next.then.opcode == 0x2 ? [timestamp(next.then.payload)] : [])
            #expect(seen.contains(1005), "its next frame of cam is the newest, not the next: \(seen)")
            #expect(!seen.contains(1001), "\(seen)")
            await raw.drop()
        }
    }
}
