import Foundation
import NIOCore

/// One video frame on its way from a streamer to the viewers.
///
/// It is created by the server from one WebSocket message and handed to the
/// stream's `PipelineRunner` by value. Stages fill in what they learn
/// (decoded bytes, dimensions, a downscaled rendition) so that later stages
/// and the sink never decode twice.
public struct Frame: Sendable {
    public let streamID: String
    /// Per-stream sequence number, counting every message the stream sent.
    public let seq: UInt64
    /// When the server received the message (monotonic clock).
    public let arrival: ContinuousClock.Instant
    /// The sender's `timestamp` (ms since epoch, its own clock), forwarded as is.
    public let timestamp: Int64?
    /// When the relay received it (ms since epoch, the relay's clock; for
    /// another node's stream, that node's): sent to viewers as
    /// `received_at`, so a picture's true age can be shown and measured
    /// whatever the sender's clock says, or if it sends none.
    public let receivedAt: Int64
    /// When the camera captured it, on the relay's clock (ms since epoch):
    /// the sender's `timestamp` moved by its clock's offset to the relay's,
    /// once the relay has measured that (`StreamerClock`). Sent to viewers as
    /// `captured_at`; a picture's age is counted from it where it is known.
    public var capturedAt: Int64?
    /// The payload exactly as it arrived.
    public let payload: FramePayload
    /// The JPEG bytes, once known: at once for binary messages, after base64
    /// decoding for data URLs.
    public var jpeg: ByteBuffer?
    /// Dimensions and subsampling, once a stage has read the JPEG header.
    public var header: JPEGHeader?
    /// The rungs `downscale` could make for this stream (nil when the
    /// pipeline has no `downscale`: full only).
    public var ladder: RenditionLadder?
    /// Smaller copies made for this frame, at most one per rung, each once
    /// however many viewers get it; only the rungs some viewer is being sent.
    public var renditions: [Rendition] = []
    /// Another node's latest frame sent again for a node that just began
    /// to watch the stream: viewers get it as `"cached": true`.
    public var isReplay = false

    public init(
        streamID: String,
        seq: UInt64,
        arrival: ContinuousClock.Instant = .now,
        timestamp: Int64? = nil,
        receivedAt: Int64 = Int64((Date().timeIntervalSince1970 * 1000).rounded()),
        payload: FramePayload
    ) {
        self.receivedAt = receivedAt
        self.streamID = streamID
        self.seq = seq
        self.arrival = arrival
        self.timestamp = timestamp
        self.payload = payload
        if case .binary(let bytes) = payload { self.jpeg = bytes }
    }

    /// The copy made for `rung`, if it was made.
    public func rendition(rung: Int) -> Rendition? {
        renditions.first { $0.rung == rung }
    }

    /// The first step below full (rung 1), as pipelines with a single
    /// `low` rendition know it.
    public var lowRendition: Rendition? {
        get { rendition(rung: 1) }
        set {
            renditions.removeAll { $0.rung == 1 }
            if let newValue { renditions.insert(newValue, at: 0) }
        }
    }

    /// Size of the payload as it arrived, in bytes (the data URL's length for text).
    public var payloadSize: Int {
        switch payload {
        case .dataURL(let text): return text.utf8.count
        case .binary(let bytes): return bytes.readableBytes
        }
    }

    /// The JPEG bytes, decoding a data URL's base64 on first use and keeping
    /// the result; nil when the payload is not a decodable `data:image/...;base64,` URL.
    public mutating func resolveJPEG() -> ByteBuffer? {
        if let jpeg { return jpeg }
        guard case .dataURL(let text) = payload,
              case .success(let parsed) = DataURL.parse(text, allowedMIMETypes: nil),
              let bytes = parsed.decode()
        else { return nil }
        jpeg = bytes
        return bytes
    }
}

/// A frame's payload in the form the streamer sent it.
public enum FramePayload: Sendable {
    /// The original text format: `data:image/jpeg;base64,...`, kept verbatim so
    /// JSON viewers receive it without re-encoding.
    case dataURL(String)
    /// The efficient format: raw JPEG bytes.
    case binary(ByteBuffer)
}

/// What a JPEG header says about an image.
public struct JPEGHeader: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// Chroma subsampling as libturbojpeg names it ("4:2:0", "gray", ...).
    public var subsampling: String
    /// The JPEG's colour space ("YCbCr", "gray", "RGB", "CMYK", "YCCK").
    public var colorspace: String
    public init(width: Int, height: Int, subsampling: String, colorspace: String = "YCbCr") {
        self.width = width
        self.height = height
        self.subsampling = subsampling
        self.colorspace = colorspace
    }

    /// Four-channel JPEGs are valid, but have no YUV planes to scale in.
    public var isFourChannel: Bool { colorspace == "CMYK" || colorspace == "YCCK" }
}

/// A re-encoded, smaller copy of a frame: one rung of the stream's
/// `RenditionLadder`, for viewers that cannot take or do not need the full one.
public struct Rendition: Sendable {
    public var jpeg: ByteBuffer
    public var width: Int
    public var height: Int
    /// Its place on the ladder (1 = the first step below full).
    public var rung: Int
    public init(jpeg: ByteBuffer, width: Int, height: Int, rung: Int = 1) {
        self.jpeg = jpeg
        self.width = width
        self.height = height
        self.rung = rung
    }
}
