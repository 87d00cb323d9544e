@testable import Access
import Foundation
@testable import FramepipeServer
import Logging
@testable import Pipeline
import Testing

/// Reloading `pipelines.json` without a restart: what a live stream does,
/// what a bad file does, who may ask, and what the API and metrics say.
@Suite("Configuration reload", .timeLimit(.minutes(1)))
struct ReloadTests {
    /// Three zero bytes: valid base64, not a JPEG.
    static let notAJPEG = #"{"type": "frame", "frame": "data:image/jpeg;base64,AAAA"}"#

    static func pipelines(routes: String = "[]", headroom: Double = 1.25) -> String {
        #"""
        {"default": "standard", "routes": \#(routes), "delivery": {"policy": "goodput", "headroom": \#(headroom)},
         "pipelines": {
          "standard": {"stages": [{"stage": "base64-validation"}, {"stage": "decode-check", "mode": "full"}, {"stage": "error-counter", "maxErrors": 50}, {"stage": "fan-out"}]},
          "passthrough": {"stages": [{"stage": "size-limit"}, {"stage": "fan-out"}]}}}
        """#
    }

    static func reload(_ relay: RelayHandle, token: String? = nil) async throws -> (status: Int, body: JSONValue) {
        let response = try await RawHTTP.post(port: relay.port, path: "/api/reload", headers: token.map { ["Authorization": "Bearer \($0)"] } ?? [:])
        return (response.status, (try? JSONParser.parse(response.text)) ?? .null)
    }

    /// A relay reading its pipelines from a file, a viewer, and stream `cam-1` whose first frame the viewer has.
    static func withStreamingRelay(_ body: (RelayHandle, TemporaryFile, TestSocket, TestSocket) async throws -> Void) async throws {
        let file = try TemporaryFile("pipelines.json")
        defer { file.remove() }
        try pipelines().write(toFile: file.path, atomically: true, encoding: .utf8)
        try await withRelay(pipelinesFile: file.path) { relay in
            let viewer = try await relay.viewer()
            let streamer = try await relay.streamer("cam-1")
            streamer.send(TestFrames.text(0))
            try await viewer.waitFor(type: "frame", stream: "cam-1")
            try await body(relay, file, viewer, streamer)
        }
    }

    @Test func aLiveStreamMovesToItsNewPipelineAtItsNextFrameWithoutEnding() async throws {
        try await Self.withStreamingRelay { relay, file, viewer, streamer in
            #expect(try await relay.api("/api/streams").arrayValue?.first?["pipeline"] == .string("standard"))
            // The standard pipeline decodes every frame: this one is refused.
            streamer.send(Self.notAJPEG)
            try await streamer.waitFor("rejection") { $0["type"] == .string("error") && $0["reason"]?.stringValue?.contains("decode-check") == true }

            try Self.pipelines(routes: #"[{"match": "cam-*", "pipeline": "passthrough"}]"#, headroom: 2)
                .write(toFile: file.path, atomically: true, encoding: .utf8)
            let (status, body) = try await Self.reload(relay)
            #expect(status == 200)
            #expect(body["applied"] == .bool(true) && body["generation"] == .number(2) && body["problems"] == .array([]))

            // At its next frame the stream runs passthrough: the same bytes now reach the viewer.
            streamer.send(Self.notAJPEG)
            try await viewer.waitFor("the non-JPEG frame through passthrough") {
                $0["type"] == .string("frame") && $0["frame"] == .string("data:image/jpeg;base64,AAAA")
            }
            #expect(viewer.json(type: "stream_ended").isEmpty)
            #expect(viewer.json(type: "stream_started").count == 1)
            #expect(try await relay.api("/api/streams").arrayValue?.first?["pipeline"] == .string("passthrough"))
            #expect(relay.log.contains("stream follows the reloaded configuration with fresh stage state",
                                       ["stream_id": "cam-1", "from_pipeline": "standard", "pipeline": "passthrough", "generation": "2"]))
            // A stream that connects now is routed by the new file too; one no route matches gets the default.
            let other = try await relay.streamer("bed-2")
            other.send(TestFrames.text(1))
            try await viewer.waitFor(type: "frame", stream: "bed-2")
            let streams = try await relay.api("/api/streams")
            #expect(streams.arrayValue?.map { $0["pipeline"] } == [.string("standard"), .string("passthrough")])  // bed-2, cam-1

            let api = try await relay.api("/api/pipelines")
            #expect(api["generation"] == .number(2))
            #expect(api["source"] == .string(file.path))
            #expect(api["routes"] == .array([.object([("match", .string("cam-*")), ("pipeline", .string("passthrough"))])]))
            #expect(api["delivery"]?["headroom"] == .number(2))
            #expect(api["loaded_at"]?.stringValue != nil)
            let metrics = try await RawHTTP.get(port: relay.port, path: "/metrics").text
            #expect(metrics.contains(#"framepipe_config_reloads_total{result="applied"} 1"#))
            #expect(metrics.contains("framepipe_config_generation 2"))
            await streamer.close()
            await other.close()
        }
    }

    @Test func aBadFileIsRefusedWithItsProblemsAndTheRunningOneStays() async throws {
        try await Self.withStreamingRelay { relay, file, viewer, streamer in

            try Self.pipelines(routes: #"[{"match": "cam-*", "pipeline": "pasthrough"}]"#).write(toFile: file.path, atomically: true, encoding: .utf8)
            var (status, body) = try await Self.reload(relay)
            #expect(status == 422)
            #expect(body["applied"] == .bool(false) && body["generation"] == .number(1))
            #expect(body["problems"] == .array([.object([("path", .string("routes[0].pipeline")),
                                                         ("reason", .string(#"no pipeline named "pasthrough" (did you mean "passthrough"?)"#))])]))
            try "{\"default\": ".write(toFile: file.path, atomically: true, encoding: .utf8)
            (status, body) = try await Self.reload(relay)
            #expect(status == 422 && body["problems"]?.arrayValue?.first?["path"]?.stringValue?.hasPrefix("line 1, column") == true)
            try FileManager.default.removeItem(atPath: file.path)
            (status, body) = try await Self.reload(relay)
            #expect(status == 422 && body["problems"]?.arrayValue?.first?["reason"] == .string("no such file"))

            // Nothing changed: the stream still runs standard and still refuses a non-JPEG.
            streamer.send(Self.notAJPEG)
            try await streamer.waitFor("rejection") { $0["type"] == .string("error") && $0["reason"]?.stringValue?.contains("decode-check") == true }
            streamer.send(TestFrames.text(1))
            try await viewer.waitFor("a second frame") { $0["type"] == .string("frame") && $0["seq"] == .number(2) }  // seq 1 was the refused one
            #expect(try await relay.api("/api/pipelines")["generation"] == .number(1))
            let metrics = try await RawHTTP.get(port: relay.port, path: "/metrics").text
            #expect(metrics.contains(#"framepipe_config_reloads_total{result="refused"} 3"#))
            #expect(relay.log.all.contains { $0.level == .error && $0.message == "reload refused; the running configuration stays"
                && $0.metadata["problems"]?.contains("routes[0].pipeline") == true })
            await streamer.close()
        }
    }

    @Test func aFileWithoutThePipelineNamedByTheFlagIsRefused() async throws {
        let file = try TemporaryFile("pipelines.json")
        defer { file.remove() }
        try Self.pipelines().write(toFile: file.path, atomically: true, encoding: .utf8)
        try await withRelay(.test { $0.pipeline = "passthrough" }, pipelinesFile: file.path) { relay in
            try #"{"default": "standard", "pipelines": {"standard": {"stages": [{"stage": "fan-out"}]}}}"#
                .write(toFile: file.path, atomically: true, encoding: .utf8)
            let (status, body) = try await Self.reload(relay)
            #expect(status == 422 && body["problems"]?.arrayValue?.first?["path"] == .string("(--pipeline)"))
        }
    }

    @Test func onlyAnAdminTokenMayReload() async throws {
        let file = try TemporaryFile("pipelines.json")
        defer { file.remove() }
        try Self.pipelines().write(toFile: file.path, atomically: true, encoding: .utf8)
        try await withRelay(.test { $0.auth = TestTokens.settings }, pipelinesFile: file.path) { relay in
            #expect(try await Self.reload(relay).status == 401)
            #expect(try await Self.reload(relay, token: try await TestTokens.hs256(.viewer, ["*"])).status == 403)
            #expect(try await Self.reload(relay, token: try await TestTokens.hs256(.streamer, ["*"])).status == 403)
            let (status, body) = try await Self.reload(relay, token: try await TestTokens.hs256(.admin, ["*"]))
            #expect(status == 200 && body["generation"] == .number(2))
            // A reload changes the relay: a GET (a link, a prefetch) does not set one off.
            let get = try await RawHTTP.get(port: relay.port, path: "/api/reload?token=\(try await TestTokens.hs256(.admin, ["*"]))")
            #expect(get.status == 404 || get.status == 405)
        }
    }

    @Test func pipelinesGivenInCodeHaveNothingToReread() async throws {
        try await withRelay { relay in
            let (status, body) = try await Self.reload(relay)
            #expect(status == 422 && body["problems"]?.arrayValue?.first?["path"] == .string("(source)"))
        }
    }
}

/// `/readyz` as an orchestrator reads it; the process and cluster tests
/// show it on SIGTERM and with Redis gone.
@Suite("Readiness")
struct ReadinessTests {
    @Test func notReadyBeforeListeningNorWhileDraining() {
        let hub = ViewerHub(logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }, metrics: RelayMetrics())
        let readiness = Readiness(hub: hub, cluster: nil, readyWithoutRedis: false)
        #expect(readiness.check().state == "starting" && !readiness.check().ready)
        readiness.markListening()
        #expect(readiness.check().ready && readiness.check().reason == nil)
        hub.beginShutdown()
        #expect(readiness.check().state == "draining" && !readiness.check().ready)
    }

    @Test func readyzIsPublicAndSaysWhy() async throws {
        try await withRelay(.test { $0.auth = TestTokens.settings }) { relay in
            let response = try await RawHTTP.get(port: relay.port, path: "/readyz")
            #expect(response.status == 200)
            #expect(response.text == #"{"ready": true, "state": "ready"}"#)
        }
    }
}
