import TestFixtures
import NIOCore
@testable import Pipeline
@testable import Stages

/// One stage instance built from a parameters object, as the loader would.
func makeStage<S: Stage>(_ type: S.Type, _ parameters: [String: JSONValue] = [:], sink: RecordingSink = RecordingSink()) -> S {
    for (key, value) in parameters {
        precondition(S.declaration.parameter(named: key)?.problem(with: value) == nil, "invalid test parameter \(key)")
    }
    return S(configuration: S.configuration(from: StageParameters(parameters)), context: .test(sink))
}

func textFrame(_ text: String) -> Frame { Frame(streamID: "S-1", seq: 1, payload: .dataURL(text)) }
func binaryFrame(_ bytes: ByteBuffer) -> Frame { Frame(streamID: "S-1", seq: 1, payload: .binary(bytes)) }
func binaryFrame(_ bytes: [UInt8]) -> Frame { binaryFrame(ByteBuffer(bytes: bytes)) }

/// The code of a rejection, or nil when the outcome is not one.
func rejectionCode(_ outcome: StageOutcome) -> String? {
    if case .reject(let r) = outcome { return r.code }
    return nil
}

/// Small real frames shared by the tests.
enum Fixtures {
    static let jpeg = TestPattern.jpeg(width: 320, height: 240, quality: 80)
    static var jpegBytes: [UInt8] { Array(jpeg.readableBytesView) }
    static let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]

    static func truncated(keeping fraction: Double) -> [UInt8] {
        Array(jpegBytes.prefix(Int(Double(jpegBytes.count) * fraction)))
    }

    /// The JPEG with bytes in the entropy-coded data overwritten.
    static func flipped() -> [UInt8] {
        var bytes = jpegBytes
        let start = bytes.count / 3
        for i in stride(from: start, to: start + 400, by: 3) { bytes[i] ^= 0xA5 }
        return bytes
    }
}
