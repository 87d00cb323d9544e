@testable import Pipeline
@testable import Stages
import Testing

/// Loads `text` with the built-in stages, returning the problems as
/// `path: reason` lines (empty when the file is valid).
func problems(_ text: String) -> [String] {
    do {
        _ = try PipelineConfigLoader(registry: .builtIn).load(text: text)
        return []
    } catch {
        return error.problems.map(\.description)
    }
}

/// A config with one pipeline `p` made of the given stage objects.
private func config(_ stages: String...) -> String {
    #"{"default": "p", "pipelines": {"p": {"stages": ["# + stages.joined(separator: ", ") + "]}}}"
}

@Suite("Config loading")
struct ConfigLoaderTests {
    @Test func shippedPipelinesFileIsValid() throws {
        let text = try String(contentsOfFile: #filePath.replacingOccurrences(of: "Tests/PipelineTests/ConfigLoaderTests.swift", with: "pipelines.json"), encoding: .utf8)
        let config = try PipelineConfigLoader(registry: .builtIn).load(text: text)
        #expect(config.defaultPipeline == "standard")
        #expect(config.pipelines.map(\.name) == ["standard", "strict", "passthrough", "low-bandwidth"])
        #expect(config.pipeline(named: "standard")?.stages.map(\.declaration.name) ==
            ["size-limit", "base64-validation", "decode-check", "error-counter", "picture-health", "downscale", "fan-out"])
    }

    @Test func wrongChoiceNamesPathAndAlternatives() {
        #expect(problems(config(#"{"stage": "decode-check", "mode": "fulll"}"#, #"{"stage": "fan-out"}"#)) ==
            [#"pipelines.p.stages[0].mode: expected "header" or "full", got "fulll""#])
    }

    @Test func unknownStageSuggestsClosestName() {
        #expect(problems(config(#"{"stage": "decode-chek"}"#, #"{"stage": "fan-out"}"#)) ==
            [#"pipelines.p.stages[0].stage: unknown stage "decode-chek" (did you mean "decode-check"?)"#])
    }

    @Test func unknownParameterSuggestsClosestName() {
        #expect(problems(config(#"{"stage": "size-limit", "maxbyte": 10}"#, #"{"stage": "fan-out"}"#)) ==
            [#"pipelines.p.stages[0].maxbyte: unknown parameter of "size-limit" (did you mean "maxBytes"?)"#])
    }

    @Test func parameterOfStageWithoutParameters() {
        #expect(problems(config(#"{"stage": "fan-out", "viewers": 3}"#)) ==
            [#"pipelines.p.stages[0].viewers: unknown parameter of "fan-out"; "fan-out" takes no parameters"#])
    }

    @Test func wrongTypeIsNamed() {
        #expect(problems(config(#"{"stage": "size-limit", "maxBytes": "4MB"}"#, #"{"stage": "fan-out"}"#)) ==
            [#"pipelines.p.stages[0].maxBytes: expected an integer, got string "4MB""#])
        #expect(problems(config(#"{"stage": "decode-check", "requireEndMarker": 1}"#, #"{"stage": "fan-out"}"#)) ==
            [#"pipelines.p.stages[0].requireEndMarker: expected true or false, got number 1"#])
        #expect(problems(config(#"{"stage": "size-limit", "maxBytes": 2.5}"#, #"{"stage": "fan-out"}"#)) ==
            [#"pipelines.p.stages[0].maxBytes: expected an integer, got 2.5"#])
    }

    @Test func valueOutOfRange() {
        #expect(problems(config(#"{"stage": "downscale", "quality": 0}"#, #"{"stage": "fan-out"}"#)) ==
            [#"pipelines.p.stages[0].quality: must be between 1 and 100, got 0"#])
        #expect(problems(config(#"{"stage": "rate-limit", "maxFps": 5000}"#, #"{"stage": "fan-out"}"#)) ==
            [#"pipelines.p.stages[0].maxFps: must be between 0.1 and 1000, got 5000"#])
    }

    @Test func listElementIsNamed() {
        #expect(problems(config(#"{"stage": "base64-validation", "mimeTypes": ["image/jpeg", 3]}"#, #"{"stage": "fan-out"}"#)) ==
            [#"pipelines.p.stages[0].mimeTypes[1]: expected a string, got number 3"#])
    }

    @Test func sinkMustBeLast() {
        #expect(problems(config(#"{"stage": "fan-out"}"#, #"{"stage": "size-limit"}"#)) == [
            #"pipelines.p.stages[0]: sink "fan-out" must be the last stage; 1 stage(s) follow it"#,
            #"pipelines.p.stages[1]: the last stage must be a sink ("fan-out"), or no frame reaches a viewer; got "size-limit""#,
        ])
    }

    @Test func missingDefaultPipeline() {
        #expect(problems(#"{"pipelines": {"p": {"stages": [{"stage": "fan-out"}]}}}"#) ==
            ["default: missing; name the pipeline to run when --pipeline is not given"])
    }

    @Test func defaultNamesNoPipeline() {
        #expect(problems(#"{"default": "standrd", "pipelines": {"standard": {"stages": [{"stage": "fan-out"}]}}}"#) ==
            [#"default: no pipeline named "standrd" (did you mean "standard"?)"#])
    }

    @Test func malformedJSONGivesLineAndColumn() {
        let text = "{\n  \"default\": \"p\",\n  \"pipelines\": {\"p\" {}}\n}"
        #expect(problems(text) == ["line 3, column 21: unexpected '{', expected ':' after member name"])
    }

    @Test func unknownTopLevelAndPipelineFields() {
        #expect(problems(#"{"default": "p", "pipeline": {}, "pipelines": {"p": {"stage": [], "stages": [{"stage": "fan-out"}]}}}"#) == [
            #"pipeline: unknown field (did you mean "pipelines"?)"#,
            #"pipelines.p.stage: unknown field (did you mean "stages"?)"#,
        ])
    }

    @Test func everyProblemIsReportedAtOnce() {
        let text = #"""
        {"default": "a", "pipelines": {
          "a": {"stages": [{"stage": "size-limit", "maxBytes": -1}, {"stage": "decode-check", "mode": "fulll"}, {"stage": "fan-out"}]},
          "b": {"stages": [{"stage": "nope"}, {"stage": "fan-out", "x": 1}]},
          "c": {"stages": []}
        }}
        """#
        #expect(problems(text) == [
            "pipelines.a.stages[0].maxBytes: must be between 1 and 64000000, got -1",
            #"pipelines.a.stages[1].mode: expected "header" or "full", got "fulll""#,
            #"pipelines.b.stages[0].stage: unknown stage "nope""#,
            #"pipelines.b.stages[1].x: unknown parameter of "fan-out"; "fan-out" takes no parameters"#,
            #"pipelines.c.stages: empty; a pipeline needs at least a sink such as "fan-out""#,
        ])
    }

    @Test func stageWithoutName() {
        #expect(problems(config(#"{"mode": "full"}"#, #"{"stage": "fan-out"}"#)) ==
            ["pipelines.p.stages[0].stage: missing; name the stage type (run `framepipe stages` for the list)"])
        #expect(problems(config(#""fan-out""#)) ==
            [#"pipelines.p.stages[0]: expected an object such as {"stage": "fan-out"}, got string"#])
    }

    @Test func defaultsApplyWhenParametersAreAbsent() throws {
        let config = try PipelineConfigLoader(registry: .builtIn).load(text: config(#"{"stage": "size-limit"}"#, #"{"stage": "fan-out"}"#))
        let stage = try #require(config.pipeline(named: "p")?.stages.first)
        #expect(stage.parameters.values.isEmpty)
        #expect(stage.declaration.parameter(named: "maxBytes")?.defaultValue == .number(4_000_000))
    }
}
