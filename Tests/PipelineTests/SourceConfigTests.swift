import Foundation
@testable import Pipeline
@testable import Stages
import Testing

/// `"sources"` in `pipelines.json`: cameras the relay pulls. Every wrong
/// entry is named by its JSON path, and a secret never appears in a reason.
@Suite("Pulled sources in the config")
struct SourceConfigTests {
    private func load(_ sources: String, environment: [String: String] = [:]) throws(ConfigError) -> PipelineConfig {
        try PipelineConfigLoader(registry: .builtIn, environment: environment).load(text: #"""
            {"default": "standard", "sources": \#(sources), "pipelines": {"standard": {"stages": [{"stage": "fan-out"}]}}}
            """#)
    }

    private func problems(_ sources: String, environment: [String: String] = [:]) -> [ConfigProblem] {
        do throws(ConfigError) {
            _ = try load(sources, environment: environment)
            return []
        } catch {
            return error.problems
        }
    }

    @Test func aSourceTakesItsDefaultsAndItsCredentialsByName() throws {
        let config = try load(#"""
            [{"stream_id": "bed-12", "url": "http://10.0.0.12/mjpg/video.mjpg", "credentials": {"env": "BED12"}},
             {"stream_id": "hall", "url": "https://cam.example/snapshot.jpg", "pollInterval": 0.5, "stallTimeout": 10, "retryMin": 2, "retryMax": 60}]
            """#, environment: ["BED12": "viewer:pa55"])
        #expect(config.sources == [
            PulledSource(streamID: "bed-12", url: "http://10.0.0.12/mjpg/video.mjpg", credentials: .environment("BED12")),
            PulledSource(streamID: "hall", url: "https://cam.example/snapshot.jpg", stallTimeout: .seconds(10), pollInterval: .milliseconds(500),
                         retryMin: .seconds(2), retryMax: .seconds(60)),
        ])
        #expect(config.source(of: "hall")?.url == "https://cam.example/snapshot.jpg")
        #expect(config.source(of: "bed-1") == nil)
    }

    @Test func everyWrongEntryIsNamedByItsPath() {
        let found = problems(#"""
            [{"stream_id": "bed 12", "url": "rtsp://cam/stream"},
             {"stream_id": "a", "url": "http://nurse:secret@cam/video"},
             {"stream_id": "a", "url": "http://cam/video", "stallTimout": 3},
             {"url": "http:///nohost", "retryMin": 5, "retryMax": 1, "credentials": {"env": "MISSING"}},
             {"stream_id": "b", "url": "http://cam/b", "credentials": {"password": "x"}, "pollInterval": 0},
             "http://cam/c"]
            """#)
        let byPath = Dictionary(found.map { ($0.path, $0.reason) }, uniquingKeysWith: { $0 + " | " + $1 })
        #expect(byPath["sources[0].stream_id"]?.contains("stream id must be") == true)
        #expect(byPath["sources[0].url"]?.contains("An RTSP camera can be turned into MJPEG by ffmpeg") == true)
        #expect(byPath["sources[1].url"]?.contains("credentials inside the URL would be logged") == true)
        #expect(!found.contains { $0.reason.contains("nurse:secret") }, "the password is not repeated: \(found)")
        #expect(byPath["sources[2].stream_id"]?.contains("already pulled by sources[1]") == true)
        #expect(byPath["sources[2].stallTimout"]?.contains(#"did you mean "stallTimeout""#) == true)
        #expect(byPath["sources[3].stream_id"]?.contains("missing") == true)
        #expect(byPath["sources[3].url"]?.contains("names no host") == true)
        #expect(byPath["sources[3].credentials.env"] == "environment variable MISSING is not set")
        #expect(byPath["sources[4].credentials"]?.contains(#"expected {"file""#) == true)
        #expect(byPath["sources[4].pollInterval"]?.contains("expected seconds from 0.03") == true)
        #expect(byPath["sources[5]"]?.contains("expected an object") == true)
        #expect(problems(#"{"stream_id": "x"}"#).first?.path == "sources")
    }

    @Test func retriesMustGrowAndCredentialsMustReadAsUserAndPassword() throws {
        #expect(problems(#"[{"stream_id": "a", "url": "http://cam/a", "retryMin": 5, "retryMax": 1}]"#).map(\.path) == ["sources[0].retryMax"])
        let noColon = problems(#"[{"stream_id": "a", "url": "http://cam/a", "credentials": {"env": "CAM"}}]"#, environment: ["CAM": "justatoken"])
        #expect(noColon.map(\.description) == ["sources[0].credentials.env: the environment variable CAM must hold one line user:password"])
        let missingFile = problems(#"[{"stream_id": "a", "url": "http://cam/a", "credentials": {"file": "/nonexistent/cam.secret"}}]"#)
        #expect(missingFile.map(\.description) == ["sources[0].credentials.file: no such file /nonexistent/cam.secret"])
    }
}
