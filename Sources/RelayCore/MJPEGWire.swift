import Foundation
import NIOCore

/// An MJPEG viewer's frame as the bytes that go on its socket: one part of
/// a `multipart/x-mixed-replace` body, as one chunk of a chunked HTTP/1.1
/// response.
///
/// Like `WebSocketWire`, it is built once per frame and rendition and
/// written as it is to every MJPEG viewer's socket below NIO's HTTP
/// encoder, so each part is already a whole chunk. Each part ends with the
/// next boundary, right after the JPEG: a client knows a picture is whole
/// when the boundary comes, so one that waited for the next part's
/// boundary would show every frame one frame late.
///
/// Chromium waits longer: it shows a part only once it has parsed the
/// *next* part's headers (Blink's `MultipartImageResourceParser` finishes
/// a part in `ParseHeaders`), so an `<img>` would show each frame when the
/// next one comes, a second late on a 1 fps camera. A browser (a
/// `User-Agent` with "Mozilla/") is therefore sent each part's headers
/// ahead, with the boundary that ends the part before: `Content-Type` only,
/// since the next picture's length and time are not known yet. Tools that
/// read `Content-Length` (ffmpeg, VLC, GStreamer, curl) get the full
/// headers with each part.
package enum MJPEGWire {
    static let boundary = "framepipe"
    package static let contentType = "multipart/x-mixed-replace;boundary=\(boundary)"
    static let aheadHeaders = "Content-Type: image/jpeg\r\n\r\n"

    /// The body's first bytes, before the first part's JPEG (headers ahead)
    /// or headers.
    package static func opening(headersAhead: Bool) -> String {
        "--\(boundary)\r\n" + (headersAhead ? aheadHeaders : "")
    }

    /// One part: `Content-Type`, `Content-Length` and `X-Timestamp`
    /// (seconds since the epoch with microseconds, as ustreamer and
    /// mjpg-streamer send it: the capture time where known, else when the
    /// relay received the frame), the JPEG, and the next boundary line;
    /// `headersAhead`: the JPEG, the next boundary line and the next part's headers.
    static func part(jpeg: ByteBuffer, timestampMilliseconds: Int64, headersAhead: Bool = false) -> ByteBuffer {
        let seconds = timestampMilliseconds / 1000, micros = (timestampMilliseconds % 1000) * 1000
        let head = headersAhead ? "" : "Content-Type: image/jpeg\r\nContent-Length: \(jpeg.readableBytes)\r\n"
            + "X-Timestamp: \(seconds).\(String(format: "%06lld", micros))\r\n\r\n"
        let tail = "\r\n--\(boundary)\r\n" + (headersAhead ? aheadHeaders : "")
        let length = head.utf8.count + jpeg.readableBytes + tail.utf8.count
        let size = String(length, radix: 16)
        var buffer = ByteBufferAllocator().buffer(capacity: size.utf8.count + 4 + length)
        buffer.writeString(size + "\r\n")
        buffer.writeString(head)
        buffer.writeImmutableBuffer(jpeg)
        buffer.writeString(tail)
        buffer.writeString("\r\n")
        return buffer
    }
}
