import TestFixtures
import NIOCore
@testable import Pipeline
@testable import Stages
import Testing

@Suite("decode-check")
struct DecodeCheckStageTests {
    static let modes: [JSONValue] = [.string("header"), .string("full")]

    @Test(arguments: modes)
    func acceptsARealJPEGAndRecordsItsHeader(mode: JSONValue) {
        var frame = binaryFrame(Fixtures.jpeg)
        #expect(makeStage(DecodeCheckStage.self, ["mode": mode]).processed(&frame) == .pass)
        #expect(frame.header == JPEGHeader(width: 320, height: 240, subsampling: "4:2:0"))
    }

    @Test(arguments: modes)
    func decodesDataURLsWithoutAPrecedingBase64Stage(mode: JSONValue) {
        var frame = textFrame(TestPattern.dataURL(Fixtures.jpeg))
        #expect(makeStage(DecodeCheckStage.self, ["mode": mode]).processed(&frame) == .pass)
    }

    @Test(arguments: modes)
    func rejectsPNGBytesAsNotJPEG(mode: JSONValue) {
        var frame = binaryFrame(Fixtures.png)
        guard case .reject(let r) = makeStage(DecodeCheckStage.self, ["mode": mode]).processed(&frame) else { Issue.record("passed"); return }
        #expect(r.code == "not_jpeg")
        #expect(r.detail.contains("looks like PNG"))
    }

    @Test(arguments: modes)
    func rejectsEmptyAndTinyPayloads(mode: JSONValue) {
        for bytes: [UInt8] in [[], [0xFF], [0xFF, 0xD8, 0xFF], [0xFF, 0xD8, 0xFF, 0xD9]] {
            var frame = binaryFrame(bytes)
            #expect(rejectionCode(makeStage(DecodeCheckStage.self, ["mode": mode]).processed(&frame)) != nil)
        }
    }

    @Test(arguments: modes)
    func rejectsTruncatedJPEG(mode: JSONValue) {
        var frame = binaryFrame(Fixtures.truncated(keeping: 0.6))
        #expect(rejectionCode(makeStage(DecodeCheckStage.self, ["mode": mode]).processed(&frame)) == "truncated")
    }

    @Test func fullModeCatchesTruncationEvenWithoutTheEndMarkerCheck() {
        var frame = binaryFrame(Fixtures.truncated(keeping: 0.6))
        let stage = makeStage(DecodeCheckStage.self, ["mode": .string("full"), "requireEndMarker": .bool(false)])
        #expect(rejectionCode(stage.processed(&frame)) == "corrupt_jpeg")
        var header = binaryFrame(Fixtures.truncated(keeping: 0.6))
        let headerOnly = makeStage(DecodeCheckStage.self, ["mode": .string("header"), "requireEndMarker": .bool(false)])
        #expect(headerOnly.processed(&header) == .pass, "header mode alone cannot see a cut-off body")
    }

    @Test func fullModeRejectsFlippedBytes() {
        var frame = binaryFrame(Fixtures.flipped())
        #expect(rejectionCode(makeStage(DecodeCheckStage.self, ["mode": .string("full")]).processed(&frame)) == "corrupt_jpeg")
    }

    @Test func rejectsCorruptHeader() {
        var bytes = Fixtures.jpegBytes
        for i in 4..<60 { bytes[i] = 0x00 }
        var frame = binaryFrame(bytes)
        #expect(rejectionCode(makeStage(DecodeCheckStage.self).processed(&frame)) == "corrupt_jpeg")
    }

    @Test func enforcesMaximumDimensions() {
        var wide = binaryFrame(Fixtures.jpeg)
        #expect(rejectionCode(makeStage(DecodeCheckStage.self, ["maxWidth": .number(319)]).processed(&wide)) == "too_wide")
        var tall = binaryFrame(Fixtures.jpeg)
        #expect(rejectionCode(makeStage(DecodeCheckStage.self, ["maxHeight": .number(200)]).processed(&tall)) == "too_tall")
    }

    @Test func refusesHugeDeclaredDimensionsBeforeDecoding() {
        // A valid 16x16 JPEG whose SOF0 claims 60000x60000.
        var bytes = Array(TestPattern.jpeg(width: 16, height: 16).readableBytesView)
        let sof = (0..<bytes.count - 1).first { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xC0 }!
        bytes[sof + 5] = 0xEA; bytes[sof + 6] = 0x60; bytes[sof + 7] = 0xEA; bytes[sof + 8] = 0x60
        var frame = binaryFrame(bytes)
        #expect(rejectionCode(makeStage(DecodeCheckStage.self, ["mode": .string("full")]).processed(&frame)) == "too_many_pixels")
    }
}
