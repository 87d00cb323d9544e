import TestFixtures
import NIOCore

/// Real small frames for server tests (decode fully, so `strict` passes them).
enum TestFrames {
    static let jpegs: [ByteBuffer] = (0..<4).map { TestPattern.jpeg(width: 160, height: 120, frame: $0, quality: 70) }

    static func jpeg(_ i: Int) -> ByteBuffer { jpegs[i % jpegs.count] }

    /// The original text format.
    static func text(_ i: Int, timestamp: Int64? = nil) -> String {
        let ts = timestamp.map { #","timestamp":\#($0)"# } ?? ""
        return #"{"type":"frame","frame":"\#(TestPattern.dataURL(jpeg(i)))"\#(ts)}"#
    }
}
