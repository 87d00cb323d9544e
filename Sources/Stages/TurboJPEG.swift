import CTurboJPEG
import NIOCore
import Pipeline

/// A libturbojpeg decompressor and compressor for one stream.
///
/// A `tjhandle` is not thread-safe but is cheap to keep, so every stage
/// instance that needs one owns one: stages are per stream and used from one
/// task, which is exactly the confinement libturbojpeg asks for.
public final class TurboJPEG {
    private let decompressor: tjhandle
    private var compressor: tjhandle?
    /// Scratch planes reused between frames so steady-state decoding allocates nothing.
    private var scratch: [UInt8] = []

    /// Images with more pixels than this are refused before any pixel is
    /// decoded: a 100-byte file may declare 65535×65535.
    public static let maxPixels = 40_000_000

    /// The scale factors libturbojpeg's DCT scaling can produce, below 1.
    public static let downscaleFactors = ["7/8", "3/4", "5/8", "1/2", "3/8", "1/4", "1/8"]

    public init() {
        guard let handle = tjInitDecompress() else {
            // Only fails when malloc fails: there is no meaningful recovery.
            fatalError("libturbojpeg: tjInitDecompress failed: out of memory")
        }
        self.decompressor = handle
    }

    deinit {
        tjDestroy(decompressor)
        if let compressor { tjDestroy(compressor) }
    }

    /// A decoding failure, with libturbojpeg's own words.
    public struct Failure: Error, Equatable, CustomStringConvertible {
        public let code: String
        public let message: String
        public var description: String { message }
    }

    /// Reads dimensions and subsampling from the header, decoding no pixels.
    public func readHeader(_ jpeg: ByteBuffer) -> Result<JPEGHeader, Failure> {
        guard Self.hasSOI(jpeg) else {
            return .failure(Failure(code: "not_jpeg", message: "does not start with the JPEG SOI marker (FF D8 FF)" + Self.sniff(jpeg)))
        }
        var width: Int32 = 0, height: Int32 = 0, subsamp: Int32 = 0, colorspace: Int32 = 0
        let rc = jpeg.withUnsafeReadableBytes { raw in
            tjDecompressHeader3(decompressor, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt(raw.count),
                                &width, &height, &subsamp, &colorspace)
        }
        guard rc == 0 else { return .failure(Failure(code: "corrupt_jpeg", message: "bad JPEG header: " + errorText(decompressor))) }
        guard width > 0, height > 0, Int(width) * Int(height) <= Self.maxPixels else {
            return .failure(Failure(code: "too_many_pixels", message: "declares \(width)x\(height), over the \(Self.maxPixels)-pixel limit"))
        }
        return .success(JPEGHeader(width: Int(width), height: Int(height), subsampling: Self.subsamplingName(subsamp),
                                   colorspace: Self.colorspaceName(colorspace)))
    }

    /// Decompresses the whole image (to YUV planes, the cheapest target) and
    /// fails on anything libturbojpeg reports, warnings included: a
    /// truncated or corrupted frame would otherwise show as a grey smear.
    public func verifyFully(_ jpeg: ByteBuffer, header: JPEGHeader) -> Result<Void, Failure> {
        decodeYUV(jpeg, width: header.width, height: header.height, subsampling: header.subsampling).map { _ in () }
    }

    /// Decodes at `scale` (n/8 DCT scaling) and re-encodes at `quality`: the
    /// `low` rendition. Runs entirely in YUV, so no colour conversion.
    public func downscale(_ jpeg: ByteBuffer, header: JPEGHeader, scale: (num: Int, den: Int), quality: Int) -> Result<Rendition, Failure> {
        let width = (header.width * scale.num + scale.den - 1) / scale.den
        let height = (header.height * scale.num + scale.den - 1) / scale.den
        switch decodeYUV(jpeg, width: width, height: height, subsampling: header.subsampling) {
        case .failure(let failure): return .failure(failure)
        case .success(let subsamp):
            return encodeYUV(width: width, height: height, subsamp: subsamp, quality: quality)
        }
    }

    /// The luma plane at 1/8 scale, one byte per 8×8 block: libturbojpeg's
    /// DCT scaling keeps only each block's DC coefficient and, decoding to
    /// grayscale, skips the chroma planes and every colour conversion. What
    /// `picture-health` judges a picture by (14 400 bytes for 1280×720).
    public func lumaEighth(_ jpeg: ByteBuffer, header: JPEGHeader) -> Result<(pixels: [UInt8], width: Int, height: Int), Failure> {
        let width = (header.width + 7) / 8, height = (header.height + 7) / 8
        var luma = [UInt8](repeating: 0, count: width * height)
        let rc = jpeg.withUnsafeReadableBytes { raw in
            luma.withUnsafeMutableBufferPointer { dst in
                tjDecompress2(decompressor, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt(raw.count),
                              dst.baseAddress, Int32(width), Int32(width), Int32(height), Int32(TJPF_GRAY.rawValue), TJFLAG_LIMITSCANS)
            }
        }
        guard rc == 0 else { return .failure(Failure(code: "corrupt_jpeg", message: "JPEG does not decode to luma: " + errorText(decompressor))) }
        return .success((luma, width, height))
    }

    /// Compresses packed grayscale pixels (a one-component JPEG, as IR night cameras send).
    public func compressGray(_ pixels: [UInt8], width: Int, height: Int, quality: Int) -> ByteBuffer {
        compress(pixels, format: Int32(TJPF_GRAY.rawValue), width: width, height: height, quality: quality, subsampling: Int32(TJSAMP_GRAY.rawValue))
    }

    /// Compresses packed RGB pixels; used by tests and the bench to make real frames.
    public func compressRGB(_ pixels: [UInt8], width: Int, height: Int, quality: Int, subsampling: Int32 = Int32(TJSAMP_420.rawValue)) -> ByteBuffer {
        compress(pixels, format: Int32(TJPF_RGB.rawValue), width: width, height: height, quality: quality, subsampling: subsampling)
    }

    /// Compresses packed CMYK pixels into a four-channel (YCCK) JPEG, as some
    /// cameras and print tools make: valid, and shown by browsers.
    public func compressCMYK(_ pixels: [UInt8], width: Int, height: Int, quality: Int) -> ByteBuffer {
        compress(pixels, format: Int32(TJPF_CMYK.rawValue), width: width, height: height, quality: quality, subsampling: Int32(TJSAMP_444.rawValue))
    }

    private func compress(_ pixels: [UInt8], format: Int32, width: Int, height: Int, quality: Int, subsampling: Int32) -> ByteBuffer {
        let handle = compressHandle()
        let capacity = Int(tjBufSize(Int32(width), Int32(height), subsampling))
        var out = ByteBufferAllocator().buffer(capacity: capacity)
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { raw in
            var dst: UnsafeMutablePointer<UInt8>? = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            var size = UInt(capacity)
            let rc = pixels.withUnsafeBufferPointer { src in
                tjCompress2(handle, src.baseAddress, Int32(width), 0, Int32(height), format,
                            &dst, &size, subsampling, Int32(quality), TJFLAG_NOREALLOC)
            }
            precondition(rc == 0, "tjCompress2 failed: \(errorText(handle))")
            return Int(size)
        }
        return out
    }

    private func decodeYUV(_ jpeg: ByteBuffer, width: Int, height: Int, subsampling: String) -> Result<Int32, Failure> {
        let subsamp = Self.subsamplingCode(subsampling)
        let size = Int(tjBufSizeYUV2(Int32(width), 1, Int32(height), subsamp))
        guard size > 0 else { return .failure(Failure(code: "corrupt_jpeg", message: "unsupported subsampling \(subsampling)")) }
        if scratch.count < size { scratch = [UInt8](repeating: 0, count: size) }
        let rc = jpeg.withUnsafeReadableBytes { raw in
            scratch.withUnsafeMutableBufferPointer { dst in
                tjDecompressToYUV2(decompressor, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt(raw.count),
                                   dst.baseAddress, Int32(width), 1, Int32(height),
                                   TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS)
            }
        }
        guard rc == 0 else { return .failure(Failure(code: "corrupt_jpeg", message: "JPEG does not decode: " + errorText(decompressor))) }
        return .success(subsamp)
    }

    private func encodeYUV(width: Int, height: Int, subsamp: Int32, quality: Int) -> Result<Rendition, Failure> {
        let handle = compressHandle()
        let capacity = Int(tjBufSize(Int32(width), Int32(height), subsamp))
        var out = ByteBufferAllocator().buffer(capacity: capacity)
        var failed = false
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { raw in
            var dst: UnsafeMutablePointer<UInt8>? = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            var size = UInt(capacity)
            let rc = scratch.withUnsafeBufferPointer { src in
                tjCompressFromYUV(handle, src.baseAddress, Int32(width), 1, Int32(height), subsamp,
                                  &dst, &size, Int32(quality), TJFLAG_NOREALLOC)
            }
            if rc != 0 { failed = true; return 0 }
            return Int(size)
        }
        if failed { return .failure(Failure(code: "encode_failed", message: "re-encoding failed: " + errorText(handle))) }
        return .success(Rendition(jpeg: out, width: width, height: height))
    }

    private func compressHandle() -> tjhandle {
        if let compressor { return compressor }
        guard let handle = tjInitCompress() else { fatalError("libturbojpeg: tjInitCompress failed: out of memory") }
        compressor = handle
        return handle
    }

    private func errorText(_ handle: tjhandle) -> String {
        guard let text = tjGetErrorStr2(handle) else { return "unknown libturbojpeg error" }
        return String(cString: text)
    }

    static func hasSOI(_ jpeg: ByteBuffer) -> Bool {
        jpeg.readableBytes >= 3 && jpeg.getBytes(at: jpeg.readerIndex, length: 3) == [0xFF, 0xD8, 0xFF]
    }

    /// A hint for common wrong payloads, so the log says "PNG" rather than "garbage".
    static func sniff(_ bytes: ByteBuffer) -> String {
        guard let head = bytes.getBytes(at: bytes.readerIndex, length: min(8, bytes.readableBytes)) else { return "" }
        if head.isEmpty { return " (empty payload)" }
        if head.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return " (looks like PNG)" }
        if head.starts(with: [0x47, 0x49, 0x46]) { return " (looks like GIF)" }
        if head.starts(with: [0x52, 0x49, 0x46, 0x46]) { return " (looks like RIFF/WebP)" }
        return ""
    }

    static let subsamplingNames = ["4:4:4", "4:2:2", "4:2:0", "gray", "4:4:0", "4:1:1"]

    static func colorspaceName(_ code: Int32) -> String {
        switch code {
        case Int32(TJCS_RGB.rawValue): "RGB"
        case Int32(TJCS_GRAY.rawValue): "gray"
        case Int32(TJCS_CMYK.rawValue): "CMYK"
        case Int32(TJCS_YCCK.rawValue): "YCCK"
        default: "YCbCr"
        }
    }

    static func subsamplingName(_ code: Int32) -> String {
        code >= 0 && Int(code) < subsamplingNames.count ? subsamplingNames[Int(code)] : "unknown"
    }

    static func subsamplingCode(_ name: String) -> Int32 {
        subsamplingNames.firstIndex(of: name).map(Int32.init) ?? -1
    }
}
