import Foundation
@testable import FramepipeServer
import NIOCore
@testable import Pipeline
import Testing

/// Cameras the relay pulls (`"sources"` in the pipelines file), through a
/// real relay and a fake IP camera on loopback: pictures reach viewers as
/// any stream's do, a camera that goes away ends its stream with
/// `source_lost` and is pulled again when it comes back, credentials are
/// sent from their file, and the API says where each camera stands.
/// (ffmpeg as the camera, and a two-node cluster pulling once, are in
/// Tests/Browser/test_standard_clients.py and ClusterTests.)
@Suite("Pulled cameras", .timeLimit(.minutes(1)))
struct PulledSourceTests {
    /// A pipelines file pulling `sources` (JSON objects), with the tests' pipelines.
    static func pipelines(sources: [String]) -> String {
        let start = testPipelines.dropLast(2)  // "}}\n": the pipelines object and the root
        return start + "}, \"sources\": [" + sources.joined(separator: ", ") + "]}"
    }

    /// Retries within 50 ms, and a stall timeout no test waits for unless it means to.
    static func source(_ id: String, _ url: String, _ extra: String = "") -> String {
        #"{"stream_id": "\#(id)", "url": "\#(url)", "retryMin": 0.05, "retryMax": 0.2, "stallTimeout": 60\#(extra)}"#
    }

    static func streamRow(_ relay: RelayHandle, _ id: String) async throws -> JSONValue? {
        try await relay.api("/api/streams").arrayValue?.first { $0["id"] == .string(id) }
    }

    @Test func aCamerasPicturesReachViewersAndItsLossIsToldAndMended() async throws {
        let camera = FakeIPCamera()
        try await camera.start()
        defer { Task { await camera.stop() } }
        try await withRelay(pipelinesJSON: Self.pipelines(sources: [Self.source("bed-12", camera.mjpegURL)])) { relay in
            let viewer = try await relay.viewer("format=binary")
            try await camera.waitUntil("the relay streaming") { $0.streaming.count == 1 }
            camera.send(TestFrames.jpeg(0))
            try await viewer.waitFor(type: "stream_started", stream: "bed-12")
            camera.send(TestFrames.jpeg(1))
            try await viewer.eventually("both pictures") { viewer.binaryFrames.count == 2 }
            #expect(viewer.binaryFrames.map(\.jpeg) == [TestFrames.jpeg(0), TestFrames.jpeg(1)])
            let pulling = try await Self.streamRow(relay, "bed-12")
            #expect(pulling?["live"] == .bool(true))
            #expect(pulling?["source"]?["state"] == .string("pulling"))
            #expect(pulling?["source"]?["url"] == .string(camera.mjpegURL))

            await camera.stop()
            let ended = try await viewer.waitFor(type: "stream_ended", stream: "bed-12")
            #expect(ended["reason"] == .string("source_lost"))
            try await relay.log.waitFor("source lost; retrying", ["stream_id": "bed-12"])
            try await relay.eventually("the API tells the camera is lost") {
                let row = try await Self.streamRow(relay, "bed-12")
                return row?["live"] == .bool(false) && row?["source"]?["state"] == .string("lost")
                    && (row?["source"]?["last_error"]?.stringValue ?? "").isEmpty == false
            }
            let ready = try await RawHTTP.get(port: relay.port, path: "/readyz")
            #expect(ready.status == 200, "a lost camera does not take the relay out of service")
            #expect(ready.text.contains(#""lost": 1"#), "\(ready.text)")
            #expect(!ready.text.contains("bed-12"), "the public endpoint names no stream")

            try await camera.start()
            try await camera.waitUntil("the relay back") { $0.streaming.count == 1 }
            camera.send(TestFrames.jpeg(2))
            try await viewer.eventually("the stream started again") {
                viewer.json.filter { $0["type"] == .string("stream_started") }.count == 2
            }
            try await viewer.eventually("the new picture") { viewer.binaryFrames.last?.jpeg == TestFrames.jpeg(2) }
            #expect(camera.mostAtOnce == 1, "never two connections to the camera")
        }
    }

    /// On a clock the test moves: the camera is lost at exactly its stall
    /// timeout of silence, however slowly the machine reads its pictures.
    @Test func aCameraThatStopsSendingIsLostAtItsStallTimeout() async throws {
        let camera = FakeIPCamera()
        try await camera.start()
        defer { Task { await camera.stop() } }
        let clock = ManualRelayClock()
        let source = #"{"stream_id": "door", "url": "\#(camera.mjpegURL)", "stallTimeout": 0.3, "retryMin": 0.05, "retryMax": 0.05}"#
        try await withRelay(.test { $0.clock = clock }, pipelinesJSON: Self.pipelines(sources: [source])) { relay in
            let viewer = try await relay.viewer()
            try await camera.waitUntil("the relay streaming") { $0.streaming.count == 1 }
            camera.send(TestFrames.jpeg(0))
            try await viewer.waitFor(type: "stream_started", stream: "door")
            // The watchdog checks every 75 ms of the clock (a quarter of the timeout).
            let picture = clock.now
            clock.advance(to: picture.addingTimeInterval(0.29))
            try await clock.waitForSleeper(until: picture.addingTimeInterval(0.29 + 0.075))
            try await viewer.barrier()
            #expect(!viewer.json.contains { $0["type"] == .string("stream_ended") }, "not lost before its stall timeout")
            clock.advance(to: picture.addingTimeInterval(0.3 + 0.075))
            let ended = try await viewer.waitFor(type: "stream_ended", stream: "door")
            #expect(ended["reason"] == .string("source_lost"))
            let row = try await Self.streamRow(relay, "door")
            #expect(row?["source"]?["last_error"]?.stringValue?.contains("no picture for 0.4 s") == true, "\(String(describing: row))")
            // It reconnects after its retry wait, on the same clock.
            try await relay.eventually("a new connection") {
                clock.advance(by: .milliseconds(50))
                return camera.requests.count >= 2
            }
        }
    }

    @Test func credentialsAreSentFromTheirFileReadAgainAtEachConnection() async throws {
        let camera = FakeIPCamera(credentials: "nurse:s3cret")
        try await camera.start()
        defer { Task { await camera.stop() } }
        let secret = try TemporaryFile("camera.secret")
        defer { secret.remove() }
        try "nurse:wrong\n".write(toFile: secret.path, atomically: true, encoding: .utf8)
        let source = Self.source("bed-3", camera.mjpegURL, #", "credentials": {"file": "\#(secret.path)"}"#)
        try await withRelay(pipelinesJSON: Self.pipelines(sources: [source])) { relay in
            try await relay.eventually("the refusal told") {
                let row = try await Self.streamRow(relay, "bed-3")
                return row?["source"]?["last_error"]?.stringValue?.contains("401") == true
            }
            let error = try await Self.streamRow(relay, "bed-3")?["source"]?["last_error"]?.stringValue ?? ""
            #expect(error.contains("check the file \(secret.path)"), "\(error)")
            #expect(!error.contains("wrong") && !relay.log.all.contains { "\($0.metadata)".contains("wrong") }, "the secret is never shown")
            // A rotated secret needs no reload.
            try "nurse:s3cret\n".write(toFile: secret.path, atomically: true, encoding: .utf8)
            try await camera.waitUntil("the relay let in") { $0.streaming.count == 1 }
            let viewer = try await relay.viewer()
            camera.send(TestFrames.jpeg(0))
            try await viewer.waitFor(type: "stream_started", stream: "bed-3")
            #expect(camera.requests.last?.contains("Authorization: Basic bnVyc2U6czNjcmV0") == true)
        }
    }

    @Test func aCameraServingOneJPEGARequestIsPolled() async throws {
        let camera = FakeIPCamera()
        try await camera.start()
        defer { Task { await camera.stop() } }
        let source = Self.source("hall", camera.snapshotURL, #", "pollInterval": 0.05"#)
        try await withRelay(pipelinesJSON: Self.pipelines(sources: [source])) { relay in
            let viewer = try await relay.viewer("format=binary")
            // Until it has a picture the camera answers 503, and the relay keeps asking.
            try await camera.waitUntil("asked twice") { $0.requests.count >= 2 }
            #expect(try await Self.streamRow(relay, "hall")?["source"]?["last_error"]?.stringValue?.contains("503") == true)
            camera.send(TestFrames.jpeg(5))
            try await viewer.waitFor(type: "stream_started", stream: "hall")
            try await viewer.eventually("a polled picture") { viewer.binaryFrames.first?.jpeg == TestFrames.jpeg(5) }
            camera.send(TestFrames.jpeg(6))
            try await viewer.eventually("the next picture, polled") { viewer.binaryFrames.last?.jpeg == TestFrames.jpeg(6) }
            #expect(try await Self.streamRow(relay, "hall")?["source"]?["state"] == .string("pulling"))
        }
    }

    @Test func aPulledStreamCannotBePushedToOverWebSocketOrHTTP() async throws {
        let camera = FakeIPCamera()
        try await camera.start()
        defer { Task { await camera.stop() } }
        try await withRelay(pipelinesJSON: Self.pipelines(sources: [Self.source("bed-12", camera.mjpegURL)])) { relay in
            let upgrade = try await RawHTTP.get(port: relay.port, path: "/ws/stream/bed-12", upgrade: true)
            #expect(upgrade.status == 409, "\(upgrade.text)")
            #expect(upgrade.text.contains("pulled by the relay"))
            let post = try await RawHTTP.post(port: relay.port, path: "/api/streams/bed-12/ingest", body: "x", headers: ["Content-Type": "image/jpeg"])
            #expect(post.status == 409)
            #expect(post.text.contains(camera.mjpegURL))
        }
    }

    @Test func aReloadStartsAndStopsPullingCameras() async throws {
        let camera = FakeIPCamera()
        try await camera.start()
        defer { Task { await camera.stop() } }
        let file = try TemporaryFile("pipelines.json")
        defer { file.remove() }
        try Self.pipelines(sources: []).write(toFile: file.path, atomically: true, encoding: .utf8)
        try await withRelay(pipelinesFile: file.path) { relay in
            let viewer = try await relay.viewer()
            try Self.pipelines(sources: [Self.source("bed-7", camera.mjpegURL)]).write(toFile: file.path, atomically: true, encoding: .utf8)
            #expect(try await RawHTTP.post(port: relay.port, path: "/api/reload").status == 200)
            try await camera.waitUntil("the relay streaming") { $0.streaming.count == 1 }
            camera.send(TestFrames.jpeg(0))
            try await viewer.waitFor(type: "stream_started", stream: "bed-7")
            try Self.pipelines(sources: []).write(toFile: file.path, atomically: true, encoding: .utf8)
            #expect(try await RawHTTP.post(port: relay.port, path: "/api/reload").status == 200)
            #expect(try await viewer.waitFor(type: "stream_ended", stream: "bed-7")["reason"] == .string("closed"))
            try await camera.waitUntil("the relay gone") { $0.streaming.isEmpty }
            #expect(try await Self.streamRow(relay, "bed-7") == nil)
        }
    }
}
