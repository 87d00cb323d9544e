@testable import Pipeline
@testable import Stages
import Testing

/// `"routes"` in `pipelines.json`: first match wins, the default otherwise,
/// and every route that is wrong or can never be chosen is named by its path.
@Suite("Pipeline routes")
struct RouteConfigTests {
    private func file(routes: String) -> String {
        #"""
        {"default": "standard", "routes": \#(routes), "pipelines": {
          "standard": {"stages": [{"stage": "fan-out"}]},
          "strict": {"stages": [{"stage": "decode-check", "mode": "full"}, {"stage": "fan-out"}]},
          "passthrough": {"stages": [{"stage": "fan-out"}]}}}
        """#
    }

    @Test func theFirstMatchingRouteWinsAndTheDefaultTakesTheRest() throws {
        let config = try PipelineConfigLoader(registry: .builtIn).load(text: file(routes: #"""
            [{"match": "P-ICU-7", "pipeline": "passthrough"}, {"match": "P-ICU-*", "pipeline": "strict"}, {"match": "lab", "pipeline": "passthrough"}]
            """#))
        #expect(config.routes == [PipelineRoute(match: "P-ICU-7", pipeline: "passthrough"), PipelineRoute(match: "P-ICU-*", pipeline: "strict"),
                                  PipelineRoute(match: "lab", pipeline: "passthrough")])
        #expect(config.pipeline(forStream: "P-ICU-7").name == "passthrough")
        #expect(config.pipeline(forStream: "P-ICU-12").name == "strict")
        #expect(config.pipeline(forStream: "P-ICU-").name == "strict")
        #expect(config.pipeline(forStream: "lab").name == "passthrough")
        #expect(config.pipeline(forStream: "lab2").name == "standard")
        #expect(config.pipeline(forStream: "P-DHE-1").name == "standard")
        // --pipeline stands in for the file's default, never for a route.
        #expect(config.pipeline(forStream: "P-DHE-1", fallback: "passthrough").name == "passthrough")
        #expect(config.pipeline(forStream: "P-ICU-3", fallback: "passthrough").name == "strict")
    }

    @Test func withoutRoutesEveryStreamRunsTheDefault() throws {
        let config = try PipelineConfigLoader(registry: .builtIn).load(text: file(routes: "[]"))
        #expect(config.routes.isEmpty)
        #expect(config.pipeline(forStream: "anything").name == "standard")
    }

    @Test func unknownPipelinesBadPatternsAndWrongShapesAreNamedByPath() {
        #expect(problems(file(routes: #"""
            [{"match": "P-ICU-*", "pipeline": "strct"}, {"match": "P-*-1", "pipeline": "strict"}, {"match": "bed 4", "pipeline": "strict"},
             {"match": 7, "pipeline": "strict"}, {"pipeline": "strict"}, {"match": "x"}, "P-*", {"match": "y", "pipeline": "strict", "why": 1},
             {"match": "", "pipeline": "strict"}]
            """#)) == [
            #"routes[0].pipeline: no pipeline named "strct" (did you mean "strict"?)"#,
            #"routes[1].match: "P-*-1": "*" may only end a pattern ("P-ICU-*"); a pattern is a stream id, a prefix ending in *, or * alone"#,
            #"routes[2].match: "bed 4": not a stream id or prefix: stream id must be 1-64 characters of A-Z a-z 0-9 . _ -"#,
            "routes[3].match: expected a pattern (string), got number",
            #"routes[4].match: missing; a stream id, a prefix ending in * ("P-ICU-*"), or *"#,
            "routes[5].pipeline: missing; name the pipeline these streams run",
            #"routes[6]: expected an object with "match" and "pipeline", got string"#,
            "routes[7].why: unknown field",
            #"routes[8].match: "": not a stream id or prefix: stream id must be 1-64 characters of A-Z a-z 0-9 . _ -"#,
        ])
        #expect(problems(file(routes: #"{"match": "x", "pipeline": "strict"}"#))
                == [#"routes: expected an array such as [{"match": "P-ICU-*", "pipeline": "strict"}], got object"#])
    }

    @Test func aRouteBehindOneThatTakesAllItsStreamsCanNeverMatch() {
        #expect(problems(file(routes: #"""
            [{"match": "P-ICU-*", "pipeline": "strict"}, {"match": "P-ICU-7", "pipeline": "passthrough"}, {"match": "P-ICU-1*", "pipeline": "passthrough"},
             {"match": "P-*", "pipeline": "passthrough"}, {"match": "lab", "pipeline": "strict"}, {"match": "lab", "pipeline": "passthrough"},
             {"match": "*", "pipeline": "passthrough"}, {"match": "anything", "pipeline": "strict"}]
            """#)) == [
            #"routes[1].match: never matches: routes[0] ("P-ICU-*") already takes every stream "P-ICU-7" would; put the narrower route first"#,
            #"routes[2].match: never matches: routes[0] ("P-ICU-*") already takes every stream "P-ICU-1*" would; put the narrower route first"#,
            #"routes[5].match: never matches: routes[4] ("lab") already takes every stream "lab" would; put the narrower route first"#,
            #"routes[7].match: never matches: routes[6] ("*") already takes every stream "anything" would; put the narrower route first"#,
        ])
    }
}
