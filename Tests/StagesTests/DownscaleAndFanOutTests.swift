import TestFixtures
import NIOCore
@testable import Pipeline
@testable import Stages
import Testing

@Suite("downscale and fan-out")
struct DownscaleAndFanOutTests {
    @Test func slowViewersModeDoesNothingWhileNobodyNeedsLow() {
        var frame = binaryFrame(Fixtures.jpeg)
        #expect(makeStage(DownscaleStage.self, sink: RecordingSink(wantsLow: false)).processed(&frame) == .pass)
        #expect(frame.lowRendition == nil)
    }

    @Test func makesAHalfSizeRenditionWhenAViewerNeedsIt() throws {
        var frame = binaryFrame(Fixtures.jpeg)
        #expect(makeStage(DownscaleStage.self, sink: RecordingSink(wantsLow: true)).processed(&frame) == .pass)
        let low = try #require(frame.lowRendition)
        #expect((low.width, low.height) == (160, 120))
        #expect(low.jpeg.readableBytes < Fixtures.jpeg.readableBytes)
        // The rendition is itself a valid JPEG of the size it claims.
        var check = binaryFrame(low.jpeg)
        #expect(makeStage(DecodeCheckStage.self, ["mode": .string("full")]).processed(&check) == .pass)
        #expect(check.header?.width == 160)
    }

    @Test(arguments: [("1/4", 80, 60), ("3/4", 240, 180), ("1/8", 40, 30)])
    func alwaysModeUsesTheConfiguredScale(scale: String, width: Int, height: Int) {
        var frame = textFrame(TestPattern.dataURL(Fixtures.jpeg))
        let stage = makeStage(DownscaleStage.self, ["when": .string("always"), "scale": .string(scale)])
        #expect(stage.processed(&frame) == .pass)
        #expect(frame.lowRendition?.width == width)
        #expect(frame.lowRendition?.height == height)
    }

    /// A ladder of three steps; viewers are sent full and 1/4 only, so only
    /// 1/4 is made: a rung nobody is sent costs nothing.
    @Test func aLadderMakesOnlyTheRungsViewersAreSent() throws {
        let steps: JSONValue = .array([
            .object([("scale", .string("1/2")), ("quality", .number(70))]),
            .object([("scale", .string("3/8"))]),
            .object([("scale", .string("1/4")), ("quality", .number(40))]),
        ])
        var frame = binaryFrame(Fixtures.jpeg)
        let stage = makeStage(DownscaleStage.self, ["renditions": steps], sink: RecordingSink(wanted: RenditionSet([0, 3])))
        #expect(stage.processed(&frame) == .pass)
        #expect(frame.ladder?.steps.map(\.label) == ["1/2", "3/8", "1/4"], "the ladder is declared on every frame")
        #expect(frame.renditions.map(\.rung) == [3])
        let quarter = try #require(frame.rendition(rung: 3))
        #expect((quarter.width, quarter.height) == (80, 60))

        var everything = binaryFrame(Fixtures.jpeg)
        #expect(makeStage(DownscaleStage.self, ["renditions": steps, "when": .string("always")]).processed(&everything) == .pass)
        #expect(everything.renditions.map(\.width) == [160, 120, 80], "always: every step, largest first")
        #expect(everything.ladder?.fullForAuto == false, "always: viewers that did not ask for full get a smaller one")
        #expect(everything.renditions[0].jpeg.readableBytes > everything.renditions[2].jpeg.readableBytes)
    }

    @Test func rejectsUndecodableFrames() {
        var frame = binaryFrame(Fixtures.flipped())
        #expect(rejectionCode(makeStage(DownscaleStage.self, ["when": .string("always")]).processed(&frame)) == "corrupt_jpeg")
        var png = binaryFrame(Fixtures.png)
        #expect(rejectionCode(makeStage(DownscaleStage.self, ["when": .string("always")]).processed(&png)) == "not_jpeg")
    }

    /// decode-check accepts a CMYK JPEG; downscale cannot shrink it, so it
    /// goes on at full size instead of being dropped for everybody.
    @Test func aValidFrameThatCannotBeShrunkPassesAtFullSize() {
        let cmyk = TurboJPEG().compressCMYK([UInt8](repeating: 90, count: 64 * 48 * 4), width: 64, height: 48, quality: 80)
        var checked = binaryFrame(cmyk)
        #expect(makeStage(DecodeCheckStage.self).processed(&checked) == .pass)
        #expect(checked.header?.colorspace == "YCCK" || checked.header?.colorspace == "CMYK")
        for when in ["always", "slow-viewers"] {
            var frame = binaryFrame(cmyk)
            let stage = makeStage(DownscaleStage.self, ["when": .string(when)], sink: RecordingSink(wantsLow: true))
            #expect(stage.processed(&frame) == .pass, "\(when)")
            #expect(frame.lowRendition == nil)
        }
    }

    @Test func fanOutHandsEveryFrameToTheSinkInOrder() {
        let sink = RecordingSink()
        var stage = makeStage(FanOutStage.self, sink: sink)
        for seq in 0..<5 {
            var frame = Frame(streamID: "S-1", seq: UInt64(seq), payload: .binary(Fixtures.jpeg))
            #expect(stage.process(&frame) == .pass)
        }
        #expect(sink.frames.map(\.seq) == [0, 1, 2, 3, 4])
    }
}
