import NIOCore
import Pipeline
import Stages

/// Real JPEG frames for tests and benchmarks: a moving colour pattern with
/// noise, encoded by libturbojpeg at a quality chosen to land near a target
/// size, so a "60 KB 640x480 frame" in a figure means what it says.
public enum TestPattern {
    /// A frame of `width`×`height`; `frame` shifts the pattern so consecutive
    /// frames differ, `detail` (0...1) sets how much noise, hence size.
    public static func jpeg(width: Int, height: Int, frame: Int = 0, quality: Int = 80, detail: Double = 0.3) -> ByteBuffer {
        TurboJPEG().compressRGB(pixels(width: width, height: height, frame: frame, detail: detail),
                                width: width, height: height, quality: quality)
    }

    /// A frame whose size is within a few percent of `targetBytes` where the
    /// pattern allows it (binary search over quality, then detail).
    public static func jpeg(width: Int, height: Int, targetBytes: Int, frame: Int = 0) -> ByteBuffer {
        let codec = TurboJPEG()
        var best: ByteBuffer?
        for detail in [0.15, 0.3, 0.5, 0.8, 1.0] {
            let rgb = pixels(width: width, height: height, frame: frame, detail: detail)
            var low = 5, high = 98
            while low <= high {
                let q = (low + high) / 2
                let jpeg = codec.compressRGB(rgb, width: width, height: height, quality: q)
                if best == nil || abs(jpeg.readableBytes - targetBytes) < abs(best!.readableBytes - targetBytes) { best = jpeg }
                if jpeg.readableBytes < targetBytes { low = q + 1 } else { high = q - 1 }
            }
            if let best, abs(best.readableBytes - targetBytes) * 20 < targetBytes { return best }
        }
        return best!
    }

    /// Packed RGB pixels of the pattern.
    public static func pixels(width: Int, height: Int, frame: Int, detail: Double) -> [UInt8] {
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        var seed = UInt32(truncatingIfNeeded: 2_463_534_242 &+ frame &* 7919)
        let noise = Int(detail * 120)
        for y in 0..<height {
            for x in 0..<width {
                // xorshift: cheap, deterministic noise.
                seed ^= seed << 13; seed ^= seed >> 17; seed ^= seed << 5
                let n = noise == 0 ? 0 : Int(seed % UInt32(2 * noise + 1)) - noise
                let i = (y * width + x) * 3
                let band = ((x + frame * 8) / 32 + y / 32) % 2 == 0 ? 60 : 0
                rgb[i] = UInt8(clamping: (x * 255 / max(1, width - 1)) + n - band / 2)
                rgb[i + 1] = UInt8(clamping: (y * 255 / max(1, height - 1)) + n + band)
                rgb[i + 2] = UInt8(clamping: ((x + y + frame * 4) % 256) + n)
            }
        }
        return rgb
    }

    /// A `data:image/jpeg;base64,` URL of `jpeg`, the original text format.
    public static func dataURL(_ jpeg: ByteBuffer) -> String {
        "data:image/jpeg;base64," + Base64.encode(jpeg)
    }
}
