import NIOCore
@testable import Pipeline
import TestFixtures
@testable import Stages
import Testing

/// Rejects frames whose payload is the text "bad"; passes the rest.
private struct RejectBadStage: Stage {
    struct Configuration: Sendable {}
    static let declaration = StageDeclaration(name: "reject-bad", summary: "test")
    static func configuration(from parameters: StageParameters) -> Configuration { .init() }
    init(configuration: Configuration, context: StageContext) {}
    mutating func process(_ frame: inout Frame) -> StageOutcome {
        if case .dataURL("bad") = frame.payload { return .reject(Rejection(stage: "reject-bad", code: "bad", detail: "it said bad")) }
        return .pass
    }
}

private func frame(_ text: String, seq: UInt64 = 0) -> Frame {
    Frame(streamID: "S-1", seq: seq, payload: .dataURL(text))
}

private func runner(_ json: String, registry: StageRegistry, sink: RecordingSink) throws -> PipelineRunner {
    let config = try PipelineConfigLoader(registry: registry).load(text: #"{"default": "p", "pipelines": {"p": {"stages": "# + json + "}}}")
    return config.pipelines[0].makeRunner(context: .test(sink))
}

@Suite("Pipeline runner and registry")
struct PipelineRunnerTests {
    var registry: StageRegistry {
        var r = StageRegistry.builtIn
        try! r.register(RejectBadStage.self)
        return r
    }

    @Test func duplicateRegistrationFailsClearly() {
        var r = StageRegistry.builtIn
        #expect(throws: StageRegistryError.duplicateName("fan-out")) { try r.register(FanOutStage.self) }
        #expect(StageRegistryError.duplicateName("fan-out").description == #"a stage or policy named "fan-out" is already registered"#)
    }

    @Test func builtInNamesAreTheDocumentedOnes() {
        #expect(StageRegistry.builtIn.names == ["size-limit", "rate-limit", "base64-validation", "decode-check", "error-counter", "picture-health", "downscale", "fan-out"])
    }

    @Test func goodFrameReachesSink() throws {
        let sink = RecordingSink()
        var r = try runner(#"[{"stage": "reject-bad"}, {"stage": "fan-out"}]"#, registry: registry, sink: sink)
        #expect(r.run(frame("good")) == .delivered)
        #expect(sink.frames.count == 1)
    }

    @Test func rejectionTravelsToLaterErrorCounterWhichClosesTheStream() throws {
        let sink = RecordingSink()
        var r = try runner(#"[{"stage": "reject-bad"}, {"stage": "error-counter", "maxErrors": 3}, {"stage": "fan-out"}]"#, registry: registry, sink: sink)
        let rejection = Rejection(stage: "reject-bad", code: "bad", detail: "it said bad")
        #expect(r.run(frame("bad")) == .rejected(rejection, endStream: nil))
        #expect(r.run(frame("bad")) == .rejected(rejection, endStream: nil))
        #expect(r.run(frame("bad")) == .rejected(rejection, endStream: .errors))
        #expect(sink.frames.isEmpty)
    }

    @Test func goodFrameResetsConsecutiveCount() throws {
        var r = try runner(#"[{"stage": "reject-bad"}, {"stage": "error-counter", "maxErrors": 2}, {"stage": "fan-out"}]"#, registry: registry, sink: RecordingSink())
        for _ in 0..<5 {
            #expect(r.run(frame("bad")) == .rejected(Rejection(stage: "reject-bad", code: "bad", detail: "it said bad"), endStream: nil))
            #expect(r.run(frame("good")) == .delivered)
        }
    }

    @Test func totalModeCountsAcrossGoodFrames() throws {
        var r = try runner(#"[{"stage": "reject-bad"}, {"stage": "error-counter", "maxErrors": 2, "mode": "total"}, {"stage": "fan-out"}]"#, registry: registry, sink: RecordingSink())
        _ = r.run(frame("bad"))
        _ = r.run(frame("good"))
        guard case .rejected(_, let end) = r.run(frame("bad")) else { Issue.record("not rejected"); return }
        #expect(end == .errors)
    }

    @Test func errorCounterDoesNotSeeRejectionsAfterIt() throws {
        var r = try runner(#"[{"stage": "error-counter", "maxErrors": 1}, {"stage": "reject-bad"}, {"stage": "fan-out"}]"#, registry: registry, sink: RecordingSink())
        guard case .rejected(_, let end) = r.run(frame("bad")) else { Issue.record("not rejected"); return }
        #expect(end == nil)
    }

    @Test func malformedMessagesCountAsErrors() throws {
        var r = try runner(#"[{"stage": "error-counter", "maxErrors": 2}, {"stage": "fan-out"}]"#, registry: registry, sink: RecordingSink())
        let invalid = Rejection.message(code: "invalid_json", detail: "x")
        #expect(r.reject(invalid) == .rejected(invalid, endStream: nil))
        #expect(r.reject(invalid) == .rejected(invalid, endStream: .errors))
    }

    @Test func dropsAreNotErrors() throws {
        var r = try runner(#"[{"stage": "rate-limit", "maxFps": 1, "burst": 1}, {"stage": "error-counter", "maxErrors": 1}, {"stage": "fan-out"}]"#, registry: registry, sink: RecordingSink())
        let t0 = ContinuousClock.now
        #expect(r.run(Frame(streamID: "S", seq: 0, arrival: t0, payload: .dataURL("x"))) == .delivered)
        #expect(r.run(Frame(streamID: "S", seq: 1, arrival: t0 + .milliseconds(10), payload: .dataURL("x"))) == .dropped(stage: "rate-limit", reason: "rate_limited"))
        #expect(r.run(Frame(streamID: "S", seq: 2, arrival: t0 + .milliseconds(1100), payload: .dataURL("x"))) == .delivered)
    }

    @Test func eachStreamGetsItsOwnStageState() throws {
        let config = try PipelineConfigLoader(registry: registry).load(text: #"{"default": "p", "pipelines": {"p": {"stages": [{"stage": "reject-bad"}, {"stage": "error-counter", "maxErrors": 2}, {"stage": "fan-out"}]}}}"#)
        var a = config.pipelines[0].makeRunner(context: .test(stream: "A"))
        var b = config.pipelines[0].makeRunner(context: .test(stream: "B"))
        _ = a.run(frame("bad"))
        guard case .rejected(_, let endB) = b.run(frame("bad")) else { Issue.record("not rejected"); return }
        #expect(endB == nil)
        guard case .rejected(_, let endA) = a.run(frame("bad")) else { Issue.record("not rejected"); return }
        #expect(endA == .errors)
    }
}
