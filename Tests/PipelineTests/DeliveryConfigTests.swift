import Pipeline
import Stages
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
