@testable import Pipeline
@testable import Stages
import Testing

@Suite("size-limit")
struct SizeLimitStageTests {
    @Test func passesFramesAtTheLimit() {
        var stage = makeStage(SizeLimitStage.self, ["maxBytes": .number(10)])
        var frame = binaryFrame([UInt8](repeating: 1, count: 10))
        #expect(stage.process(&frame) == .pass)
    }

    @Test func rejectsOversizeTextAndBinary() {
        var stage = makeStage(SizeLimitStage.self, ["maxBytes": .number(10)])
        var binary = binaryFrame([UInt8](repeating: 1, count: 11))
        #expect(stage.process(&binary) == .reject(Rejection(stage: "size-limit", code: "too_large", detail: "payload is 11 bytes, limit is 10")))
        var text = textFrame(String(repeating: "A", count: 5_000_000))
        #expect(rejectionCode(makeStage(SizeLimitStage.self).processed(&text)) == "too_large")
    }

    @Test func rejectsEmptyPayload() {
        var frame = binaryFrame([])
        #expect(rejectionCode(makeStage(SizeLimitStage.self).processed(&frame)) == "empty")
    }
}

extension Stage {
    /// `process` on a copy, for one-shot checks.
    func processed(_ frame: inout Frame) -> StageOutcome {
        var copy = self
        return copy.process(&frame)
    }
}
