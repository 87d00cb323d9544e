import Foundation
import NIOCore
import NIOPosix

/// One MJPEG client for `framepipe-bench load --format mjpeg`: a plain
/// HTTP GET of `/api/streams/{id}/mjpeg`, read as the relay writes it (one
/// chunk per part, each part's headers first), counting parts and timing
/// each by its `X-Timestamp` (when the relay received the frame; this
/// machine's clock) without scanning the JPEG bytes.
enum MJPEGViewer {
    /// Until the stream is live (the relay answers 404 before), it asks again every 100 ms.
    static func watch(host: String, port: Int, stream: String, stats: ClientStatistics, isMeasuring: @escaping @Sendable () -> Bool) async throws {
        while try await !watchOnce(host: host, port: port, stream: stream, stats: stats, isMeasuring: isMeasuring) {
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// False when the stream was not live yet.
    private static func watchOnce(host: String, port: Int, stream: String, stats: ClientStatistics,
                                  isMeasuring: @escaping @Sendable () -> Bool) async throws -> Bool {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "GET /api/streams/\(stream)/mjpeg HTTP/1.1\r\nHost: \(host)\r\n\r\n"))
            var pending = ByteBuffer()
            var inHead = true
            var skip = 0  // bytes of the current chunk still to pass over
            for try await var bytes in inbound {
                pending.writeBuffer(&bytes)
                if inHead {
                    guard let end = pending.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) else { continue }
                    if pending.getString(at: pending.readerIndex, length: 12) != "HTTP/1.1 200" { return false }
                    pending.moveReaderIndex(to: end.upperBound)
                    inHead = false
                }
                while true {
                    if skip > 0 {
                        let n = min(skip, pending.readableBytes)
                        pending.moveReaderIndex(forwardBy: n)
                        skip -= n
                        if skip > 0 { break }
                    }
                    // A chunk: its size line, then (for a part) its headers at its start.
                    guard let lineEnd = pending.readableBytesView.firstRange(of: Array("\r\n".utf8)) else { break }
                    let sizeText = pending.getString(at: pending.readerIndex, length: lineEnd.lowerBound - pending.readerIndex) ?? ""
                    guard let size = Int(sizeText, radix: 16) else { throw Garbled(line: sizeText) }
                    if size == 0 { return true }
                    let headStart = lineEnd.upperBound
                    let available = pending.writerIndex - headStart
                    guard available >= min(size, 160) else { break }
                    let head = pending.getString(at: headStart, length: min(size, 160)) ?? ""
                    if let range = head.range(of: "X-Timestamp: "), let stop = head[range.upperBound...].firstIndex(where: { $0 == "\r\n" || $0 == "\r" }),
                       let seconds = Double(head[range.upperBound..<stop]) {
                        let latency = Date().timeIntervalSince1970 * 1000 - seconds * 1000
                        stats.frame(stream: stream, seq: UInt64(seconds * 1000), latencyMs: latency, measuring: isMeasuring())
                    }
                    pending.moveReaderIndex(to: headStart)
                    skip = size + 2
                }
                pending.discardReadBytes()
            }
            return true
        }
    }

    struct Garbled: Error { let line: String }
}
