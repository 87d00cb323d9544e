import CTurboJPEG
import NIOCore
import Pipeline

/// Proves a frame is a JPEG a browser can show, at the cost the config asks
/// for: `header` parses the header with libturbojpeg (dimensions,
/// subsampling) and checks the end-of-image marker; `full` decompresses
/// every pixel and rejects whatever libturbojpeg reports, warnings included.
///
/// Per stream it keeps a libturbojpeg handle and a scratch buffer.
public struct DecodeCheckStage: Stage {
    public struct Configuration: Sendable {
        public var fullDecode: Bool
        public var maxWidth: Int?
        public var maxHeight: Int?
        public var requireEndMarker: Bool
    }

    static let mode = Parameter.choice(
        "mode", ["header", "full"], default: "header",
        help: "header: parse the header only (cheap); full: decompress every pixel")
    static let maxWidth = Parameter.optionalInteger(
        "maxWidth", in: 1...65_535, help: "Reject frames wider than this (no limit when absent)")
    static let maxHeight = Parameter.optionalInteger(
        "maxHeight", in: 1...65_535, help: "Reject frames taller than this (no limit when absent)")
    static let requireEndMarker = Parameter.boolean(
        "requireEndMarker", default: true,
        help: "Reject frames that do not end with the JPEG EOI marker (catches truncation in header mode)")

    public static let declaration = StageDeclaration(
        name: "decode-check",
        summary: "Check the JPEG with libturbojpeg: header only, or a full decode",
        details: "Rejects with not_jpeg, corrupt_jpeg, truncated, too_many_pixels or too_wide/too_tall. Records width, height and subsampling on the frame. Keeps a libturbojpeg handle per stream.",
        parameters: [mode, maxWidth, maxHeight, requireEndMarker])

    public static func configuration(from parameters: StageParameters) -> Configuration {
        Configuration(fullDecode: parameters[mode] == "full", maxWidth: parameters[maxWidth],
                      maxHeight: parameters[maxHeight], requireEndMarker: parameters[requireEndMarker])
    }

    let configuration: Configuration
    let codec = TurboJPEG()

    public init(configuration: Configuration, context: StageContext) {
        self.configuration = configuration
    }

    public mutating func process(_ frame: inout Frame) -> StageOutcome {
        guard let jpeg = frame.resolveJPEG() else {
            return reject("not_jpeg", "payload is not a decodable image data URL")
        }
        let header: JPEGHeader
        switch codec.readHeader(jpeg) {
        case .failure(let failure): return reject(failure.code, failure.message)
        case .success(let h): header = h
        }
        if let maxWidth = configuration.maxWidth, header.width > maxWidth {
            return reject("too_wide", "\(header.width) pixels wide, limit is \(maxWidth)")
        }
        if let maxHeight = configuration.maxHeight, header.height > maxHeight {
            return reject("too_tall", "\(header.height) pixels tall, limit is \(maxHeight)")
        }
        if configuration.requireEndMarker, !Self.endsWithEOI(jpeg) {
            return reject("truncated", "no end-of-image marker (FF D9): the JPEG is cut short")
        }
        if configuration.fullDecode, case .failure(let failure) = codec.verifyFully(jpeg, header: header) {
            return reject(failure.code, failure.message)
        }
        frame.header = header
        return .pass
    }

    private func reject(_ code: String, _ detail: String) -> StageOutcome {
        .reject(Rejection(stage: Self.declaration.name, code: code, detail: detail))
    }

    /// EOI within the last few bytes: some encoders pad after it.
    static func endsWithEOI(_ jpeg: ByteBuffer) -> Bool {
        let tail = min(jpeg.readableBytes, 16)
        guard tail >= 2, let bytes = jpeg.getBytes(at: jpeg.writerIndex - tail, length: tail) else { return false }
        var end = bytes.count
        while end > 2, bytes[end - 1] == 0 { end -= 1 }
        return bytes[end - 2] == 0xFF && bytes[end - 1] == 0xD9
    }
}
