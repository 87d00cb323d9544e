@testable import Pipeline
@testable import Stages
import Testing

@Suite("error-counter and rate-limit")
struct ErrorCounterAndRateLimitTests {
    let bad = Rejection(stage: "decode-check", code: "not_jpeg", detail: "x")

    @Test func closesOnTheMaxErrorsthBadFrame() {
        var stage = makeStage(ErrorCounterStage.self, ["maxErrors": .number(10)])
        for _ in 1..<10 { #expect(stage.observe(bad) == nil) }
        #expect(stage.observe(bad) == .errors)
    }

    @Test func goodFrameResetsTheConsecutiveCount() {
        var stage = makeStage(ErrorCounterStage.self, ["maxErrors": .number(3)])
        var frame = binaryFrame([1])
        _ = stage.observe(bad); _ = stage.observe(bad)
        #expect(stage.process(&frame) == .pass)
        #expect(stage.count == 0)
        _ = stage.observe(bad); _ = stage.observe(bad)
        #expect(stage.observe(bad) == .errors)
    }

    @Test func rateLimitLetsAJitteryStreamAtTheLimitThrough() {
        var stage = makeStage(RateLimitStage.self, ["maxFps": .number(30)])
        let t0 = ContinuousClock.now
        var passed = 0
        for i in 0..<300 {
            let jitter = Duration.milliseconds(i % 2 == 0 ? 5 : -5)
            var frame = Frame(streamID: "S", seq: UInt64(i), arrival: t0 + .milliseconds(i * 1000 / 30) + jitter, payload: .binary(.init()))
            if stage.process(&frame) == .pass { passed += 1 }
        }
        #expect(passed == 300)
    }

    @Test func rateLimitDropsAFloodToTheLimit() {
        var stage = makeStage(RateLimitStage.self, ["maxFps": .number(10), "burst": .number(1)])
        let t0 = ContinuousClock.now
        var passed = 0
        for i in 0..<1000 {  // 1000 frames in one second
            var frame = Frame(streamID: "S", seq: UInt64(i), arrival: t0 + .milliseconds(i), payload: .binary(.init()))
            if stage.process(&frame) == .pass { passed += 1 }
        }
        #expect((10...11).contains(passed))
    }
}
