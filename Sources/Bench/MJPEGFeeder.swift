import Foundation
import NIOCore
import NIOPosix

/// One HTTP streamer for `framepipe-bench load --ingest mpjpeg`: a long
/// chunked `POST /api/streams/{id}/ingest` with one multipart part per
/// frame, as ffmpeg's `-f mpjpeg` sends it (each part with its length).
struct MJPEGFeeder {
    let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>

    static func connect(host: String, port: Int, stream: String) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
    }

    static func head(host: String, stream: String) -> ByteBuffer {
        ByteBuffer(string: "POST /api/streams/\(stream)/ingest HTTP/1.1\r\nHost: \(host)\r\n"
                   + "Content-Type: multipart/x-mixed-replace;boundary=bench\r\nTransfer-Encoding: chunked\r\n\r\n")
    }

    /// One frame as one chunk holding one part.
    static func part(_ jpeg: ByteBuffer) -> ByteBuffer {
        let head = "--bench\r\nContent-Type: image/jpeg\r\nContent-Length: \(jpeg.readableBytes)\r\n\r\n"
        let length = head.utf8.count + jpeg.readableBytes + 2
        var buffer = ByteBuffer(string: String(length, radix: 16) + "\r\n" + head)
        buffer.writeImmutableBuffer(jpeg)
        buffer.writeString("\r\n\r\n")
        return buffer
    }
}
