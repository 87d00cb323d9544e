@testable import Pipeline
@testable import Stages
import Testing

/// `pipelines.json`'s `"delivery"` object and `downscale`'s `renditions`
/// ladder: every problem named by its JSON path, like the rest of the file.
@Suite("Delivery and rendition ladder config")
struct DeliveryConfigTests {
    private func file(delivery: String? = nil, downscale: String = #"{"stage": "downscale"}"#) -> String {
        let stages = #""stages": [\#(downscale), {"stage": "fan-out"}]"#
        return #"{"default": "p", \#(delivery.map { #""delivery": \#($0), "# } ?? "")"pipelines": {"p": {\#(stages)}}}"#
    }

    @Test func withoutADeliveryObjectTheGoodputPolicyRunsWithItsDefaults() throws {
        let config = try PipelineConfigLoader(registry: .builtIn).load(text: file())
        #expect(config.delivery.declaration.name == "goodput")
        #expect(config.delivery.parameters.values.isEmpty)
    }

    @Test func theDeliveryPolicysParametersAreChecked() {
        #expect(problems(file(delivery: #"{"policy": "goodput", "headroom": 0.5, "stepUpAftr": 3, "fitToDisplay": "yes"}"#)).sorted() == [
            "delivery.fitToDisplay: expected true or false, got string \"yes\"",
            "delivery.headroom: must be between 1 and 4, got 0.5",
            #"delivery.stepUpAftr: unknown parameter of policy "goodput" (did you mean "stepUpAfter"?)"#,
        ])
        #expect(problems(file(delivery: #"{"policy": "godput"}"#)) == [#"delivery.policy: unknown delivery policy "godput" (did you mean "goodput"?)"#])
        #expect(problems(file(delivery: #"{"policy": 3}"#)) == ["delivery.policy: expected a policy name (string), got number"])
        #expect(problems(file(delivery: #""goodput""#)) == [#"delivery: expected an object such as {"policy": "goodput"}, got string"#])
        #expect(problems(#"{"default": "p", "delivry": {}, "pipelines": {"p": {"stages": [{"stage": "fan-out"}]}}}"#)
                == [#"delivry: unknown field (did you mean "delivery"?)"#])
    }

    @Test func aLadderIsReadLargestFirstWithEachStepsQuality() throws {
        let text = file(downscale: #"{"stage": "downscale", "renditions": [{"scale": "1/2", "quality": 70}, {"scale": "1/4"}]}"#)
        let config = try PipelineConfigLoader(registry: .builtIn).load(text: text)
        let stage = try #require(config.pipeline(named: "p")?.stages.first)
        let ladder = DownscaleStage.configuration(from: stage.parameters).ladder
        #expect(ladder.steps == [RenditionStep(numerator: 1, denominator: 2, quality: 70), RenditionStep(numerator: 1, denominator: 4, quality: 60)])
        #expect((0...2).map(ladder.label(ofRung:)) == ["full", "1/2", "1/4"])
    }

    @Test func aBadLadderIsNamedByEntryAndField() {
        let ladder = { (steps: String) in problems(self.file(downscale: #"{"stage": "downscale", "renditions": \#(steps)}"#)) }
        #expect(ladder(#"[{"scale": "1/3"}]"#) == [#"pipelines.p.stages[0].renditions[0].scale: expected one of "7/8", "3/4", "5/8", "1/2", "3/8", "1/4", "1/8", got "1/3""#])
        #expect(ladder(#"[{"scale": "1/2"}, {"scale": "1/4", "qualty": 50}]"#) == [#"pipelines.p.stages[0].renditions[1].qualty: unknown field (did you mean "quality"?)"#])
        #expect(ladder(#"[{"scale": "1/4"}, {"scale": "1/2"}]"#) == [#"pipelines.p.stages[0].renditions[1].scale: steps must get smaller: 1/2 follows 1/4"#])
        #expect(ladder("[]") == ["pipelines.p.stages[0].renditions: expected at least one entry, got []"])
        #expect(ladder(#"["1/2"]"#) == [#"pipelines.p.stages[0].renditions[0]: expected an object, got string "1/2""#])
        #expect(problems(file(downscale: #"{"stage": "downscale", "scale": "1/4", "renditions": [{"scale": "1/2"}]}"#))
                == [#"pipelines.p.stages[0].scale: "renditions" replaces "scale" and "quality"; give one or the other"#])
    }
}

/// A user's own policy: every visible stream at the ladder's smallest rung.
struct SmallestPolicy: DeliveryPolicy {
    struct Configuration: Sendable { var maxFPS: Double }
    static let maxFPS = Parameter.number("maxFPS", default: 5, in: 1...60, help: "frames a second per stream")
    static let declaration = PolicyDeclaration(name: "smallest", summary: "Always the smallest picture", parameters: [maxFPS])
    static func configuration(from parameters: StageParameters) -> Configuration { Configuration(maxFPS: parameters[maxFPS]) }
    let configuration: Configuration
    init(configuration: Configuration) { self.configuration = configuration }
    mutating func choose(_ input: DeliveryInput) -> [String: DeliveryChoice] {
        Dictionary(uniqueKeysWithValues: input.streams.map { ($0.id, DeliveryChoice(rung: $0.allowed.upperBound, maxFPS: configuration.maxFPS)) })
    }
}

@Suite("Custom delivery policy")
struct CustomDeliveryPolicyTests {
    @Test func aUsersPolicyIsRegisteredNamedInTheFileAndCheckedLikeABuiltIn() throws {
        var registry = StageRegistry.builtIn
        try registry.register(policy: SmallestPolicy.self)
        #expect(throws: StageRegistryError.duplicateName("smallest")) { try registry.register(policy: SmallestPolicy.self) }
        #expect(throws: StageRegistryError.duplicateName("downscale")) { try registry.register(policy: NamedLikeAStage.self) }
        let loader = PipelineConfigLoader(registry: registry)
        let text = #"{"default": "p", "delivery": {"policy": "smallest", "maxFPS": 2}, "pipelines": {"p": {"stages": [{"stage": "fan-out"}]}}}"#
        let config = try loader.load(text: text)
        #expect(config.delivery.declaration.name == "smallest")
        var policy = config.delivery.makePolicy()
        let offer = StreamOffer(id: "A", fps: 30, rungs: [RungOption(label: "full", bytesPerFrame: 1), RungOption(label: "1/2", bytesPerFrame: 1)],
                                allowed: 0...1, current: 0)
        #expect(policy.choose(DeliveryInput(now: .now, preference: .auto, link: LinkFigures(), window: nil, streams: [offer]))
                == ["A": DeliveryChoice(rung: 1, maxFPS: 2)], "built from the file's parameters")
        do {
            _ = try loader.load(text: #"{"default": "p", "delivery": {"policy": "smallest", "maxFPS": 0}, "pipelines": {"p": {"stages": [{"stage": "fan-out"}]}}}"#)
            Issue.record("a bad parameter of a custom policy was accepted")
        } catch {
            #expect(error.problems.map(\.description) == ["delivery.maxFPS: must be between 1 and 60, got 0"])
        }
    }
}

/// A policy whose name a stage already has.
struct NamedLikeAStage: DeliveryPolicy {
    static let declaration = PolicyDeclaration(name: "downscale", summary: "clashes")
    static func configuration(from parameters: StageParameters) {}
    init(configuration: Void) {}
    mutating func choose(_ input: DeliveryInput) -> [String: DeliveryChoice] { [:] }
}
