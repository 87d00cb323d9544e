@testable import Access
import Foundation
@testable import FramepipeServer
import NIOCore
@testable import Pipeline
import Synchronization
import Testing
import TestFixtures

/// `framepipe serve` as a separate process, for what only a process shows:
/// signals, exit codes, flags and environment variables.
final class ServeProcess: Sendable {
    let process: Process
    /// What the process writes to standard error.
    private let output: PipeDrain
    /// Wakes waits on each chunk of stderr and on the exit.
    private let changes = ChangeSignal()

    init(_ arguments: [String], environment: [String: String] = [:], directory: URL = packageRoot) throws {
        let process = Process()
        process.executableURL = packageRoot.appendingPathComponent(".build/debug/framepipe")
        process.arguments = ["serve", "--port", "0"] + arguments
        process.currentDirectoryURL = directory
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        self.process = process
        let changes = self.changes
        process.terminationHandler = { _ in changes.changed() }
        try process.run()
        output = PipeDrain(err, changes: changes)
    }

    deinit {
        if process.isRunning { process.terminate() }
    }

    var stderr: String { output.text }

    /// The port from the "framepipe listening" line.
    func port(timeout: Duration = .seconds(20)) async throws -> Int {
        let port = try await firstInStderr(timeout: timeout) { text in
            text.range(of: #"ws://127\.0\.0\.1:(\d+)/ws/viewer"#, options: .regularExpression).map { range in
                Int(text[range].split(separator: ":").last!.split(separator: "/").first!)!
            }
        }
        guard let port else { throw RelayHandle.TimedOut(what: "listening line; stderr: \(stderr)") }
        return port
    }

    /// Whether stderr comes to contain `text` in time: lines written one
    /// after another (the listening log line, then the banner) reach the
    /// pipe at their own moments, so one seen does not mean the next is.
    func stderrContains(_ text: String, timeout: Duration = TestDeadline.event) async throws -> Bool {
        try await firstInStderr(timeout: timeout) { $0.contains(text) ? true : nil } ?? false
    }

    /// What `find` first finds in stderr, or nil once the process exits or time runs out.
    private func firstInStderr<T>(timeout: Duration, _ find: (String) -> T?) async throws -> T? {
        var found: T?
        _ = await changes.wait(timeout: timeout) {
            found = find(stderr)
            return found != nil || (!process.isRunning && output.reachedEnd)
        }
        return found ?? find(stderr)
    }

    /// The exit status, once the process has exited and all it wrote to stderr has been read.
    func waitForExit(timeout: Duration = TestDeadline.event) async throws -> Int32 {
        _ = await changes.wait(timeout: timeout) { !process.isRunning && output.reachedEnd }
        if process.isRunning {
            process.terminate()
            throw RelayHandle.TimedOut(what: "exit")
        }
        return process.terminationStatus
    }
}

@Suite("framepipe serve process", .timeLimit(.minutes(1)), .serialized)
struct ServeProcessTests {
    /// SIGTERM (15) and SIGINT (2).
    @Test(arguments: [15, 2] as [Int32])
    func signalEndsEveryStreamForEveryViewerAndExitsZero(signal: Int32) async throws {
        let server = try ServeProcess([])
        let port = try await server.port()
        let relay = RelayHandle(port: port, log: CapturedLog())
        let viewers = try await [relay.viewer(), relay.viewer("format=binary")]
        let a = try await relay.streamer("A"), b = try await relay.streamer("B")
        a.send(TestFrames.text(0))
        b.send(TestFrames.jpeg(1))
        for v in viewers {
            try await v.waitFor(type: "stream_started", stream: "A")
            try await v.waitFor(type: "stream_started", stream: "B")
        }
        kill(server.process.processIdentifier, signal)
        for v in viewers {
            #expect(try await v.waitFor(type: "stream_ended", stream: "A")["reason"] == .string("shutdown"))
            #expect(try await v.waitFor(type: "stream_ended", stream: "B")["reason"] == .string("shutdown"))
            try await v.waitUntilFinished()
        }
        try await a.waitUntilFinished()
        try await b.waitUntilFinished()
        #expect(try await server.waitForExit() == 0, "stderr: \(server.stderr)")
        #expect(server.stderr.contains("shutting down: ending streams and closing viewers"))
        // A graceful shutdown is not a problem: its viewers leave at info.
        let removals = server.stderr.split(separator: "\n").filter { $0.contains("viewer removed") }
        #expect(removals.count == 2)
        #expect(removals.allSatisfy { $0.contains(" info ") && $0.contains("reason=finished") }, "\(removals)")
    }

    /// logrotate moves the file, then sends SIGHUP: later lines go to a new file by the same name.
    @Test func sighupReopensTheAuditLogForRotation() async throws {
        let file = try TemporaryFile("audit.jsonl")
        defer { file.remove() }
        let server = try ServeProcess(["--audit-log", file.path])
        let relay = RelayHandle(port: try await server.port(), log: CapturedLog())
        await (try await relay.viewer()).close()
        try await relay.eventually("first session written") {
            ((try? String(contentsOfFile: file.path, encoding: .utf8)) ?? "").contains("session_ended")
        }
        let rotated = file.path + ".1"
        try FileManager.default.moveItem(atPath: file.path, toPath: rotated)
        kill(server.process.processIdentifier, SIGHUP)
        try await relay.eventually("reopened") { server.stderr.contains("audit log reopened") }
        await (try await relay.viewer()).close()
        try await relay.eventually("second session in the new file") {
            ((try? String(contentsOfFile: file.path, encoding: .utf8)) ?? "").contains("session_ended")
        }
        let old = try String(contentsOfFile: rotated, encoding: .utf8).split(separator: "\n")
        let new = try String(contentsOfFile: file.path, encoding: .utf8).split(separator: "\n")
        #expect(old.count == 2 && old.allSatisfy { $0.contains(#""session": "v-1""#) })
        #expect(new.count == 2 && new.allSatisfy { $0.contains(#""session": "v-2""#) })
        kill(server.process.processIdentifier, SIGTERM)
        #expect(try await server.waitForExit() == 0)
    }

    /// `systemctl reload` sends SIGHUP: the pipelines file is read again,
    /// a bad one is refused; `/readyz` is 200 once serving, and SIGTERM ends
    /// every stream with `shutdown` before the process exits 0.
    @Test func sighupReloadsThePipelinesFileAndSigtermEndsTheStreams() async throws {
        let file = try TemporaryFile("pipelines.json")
        defer { file.remove() }
        let original = try String(contentsOf: packageRoot.appendingPathComponent("pipelines.json"), encoding: .utf8)
        try original.write(toFile: file.path, atomically: true, encoding: .utf8)
        let server = try ServeProcess(["--config", file.path, "--log-format", "json"])
        let port = try await server.port()
        let relay = RelayHandle(port: port, log: CapturedLog())
        let ready = try await RawHTTP.get(port: port, path: "/readyz")
        #expect(ready.status == 200 && ready.text == #"{"ready": true, "state": "ready"}"#)

        let routed = original.replacingOccurrences(of: #""default": "standard","#,
                                                   with: #""default": "standard", "routes": [{"match": "P-ICU-*", "pipeline": "strict"}],"#)
        try routed.write(toFile: file.path, atomically: true, encoding: .utf8)
        kill(server.process.processIdentifier, SIGHUP)
        try await relay.eventually("generation 2") { try await relay.api("/api/pipelines")["generation"] == .number(2) }
        let streamer = try await relay.streamer("P-ICU-4")
        streamer.send(TestFrames.text(0))
        try await relay.eventually("the routed stream") {
            try await relay.api("/api/streams").arrayValue?.first?["pipeline"] == .string("strict")
        }
        try "{".write(toFile: file.path, atomically: true, encoding: .utf8)
        kill(server.process.processIdentifier, SIGHUP)
        try await relay.eventually("refused") { server.stderr.contains("reload refused; the running configuration stays") }
        #expect(try await relay.api("/api/pipelines")["generation"] == .number(2))
        // --log-format json: every line one object, the metadata as fields.
        let lines = server.stderr.split(separator: "\n").filter { $0.hasPrefix("{") }
        let reloaded = try #require(lines.compactMap { try? JSONParser.parse(String($0)) }.first { $0["message"] == .string("configuration reloaded") })
        #expect(reloaded["level"] == .string("notice") && reloaded["trigger"] == .string("SIGHUP") && reloaded["generation"] == .string("2"))
        #expect(lines.allSatisfy { (try? JSONParser.parse(String($0))) != nil }, "\(lines.filter { (try? JSONParser.parse(String($0))) == nil })")

        // SIGTERM: every viewer is told its streams ended for the shutdown, then the process
        // exits 0. What `--drain-delay` adds (503 at once, frames for exactly the delay) is
        // ShutdownTests', on a clock the test moves: here it would be a race with a timer.
        let viewer = try await relay.viewer()
        try await viewer.waitFor(type: "viewer_connected")
        kill(server.process.processIdentifier, SIGTERM)
        #expect(try await viewer.waitFor(type: "stream_ended", stream: "P-ICU-4")["reason"] == .string("shutdown"))
        #expect(try await server.waitForExit() == 0)
    }

    @Test func singleSignOnFlagsReadTheProvidersKeysAndClaims() async throws {
        let key = try await ProviderKey.rsa(kid: "k1")
        let file = try TemporaryFile("jwks.json")
        defer { file.remove() }
        try ProviderKey.jwks(key).write(toFile: file.path, atomically: true, encoding: .utf8)
        let server = try ServeProcess(["--jwks-file", file.path, "--jwt-issuer", "https://sso.hospital.example/realms/ward",
                                       "--jwt-audience", "framepipe", "--jwt-role-claim", "realm_access.roles",
                                       "--jwt-viewer-role", "framepipe-viewer", "--jwt-streams-claim", "framepipe_streams"])
        let relay = RelayHandle(port: try await server.port(), log: CapturedLog())
        await (try await relay.viewer("token=\(try await key.token())")).close()
        let wrongIssuer = try await key.token(issuer: "https://other.example")
        #expect(try await RawHTTP.get(port: relay.port, path: "/ws/viewer?token=\(wrongIssuer)", upgrade: true).status == 401)
        kill(server.process.processIdentifier, SIGTERM)
        #expect(try await server.waitForExit() == 0)
        let bad = try ServeProcess(["--jwks-url", "ftp://sso.example/certs"])
        #expect(try await bad.waitForExit() != 0)
        #expect(bad.stderr.contains("--jwks-url must be an http:// or https:// URL"))
    }

    @Test func environmentVariablesConfigureTheServer() async throws {
        let server = try ServeProcess([], environment: ["FRAMEPIPE_PIPELINE": "passthrough", "FRAMEPIPE_IDLE_WARNING": "0.2", "FRAMEPIPE_IDLE_TIMEOUT": "0.5"])
        let port = try await server.port()
        let relay = RelayHandle(port: port, log: CapturedLog())
        #expect(try await relay.api("/healthz")["pipeline"] == .string("passthrough"))
        let viewer = try await relay.viewer()
        let streamer = try await relay.streamer("cam")
        streamer.send(TestFrames.text(0))
        #expect(try await viewer.waitFor(type: "stream_ended", stream: "cam", timeout: .seconds(3))["reason"] == .string("timeout"))
        kill(server.process.processIdentifier, SIGTERM)
        #expect(try await server.waitForExit() == 0)
    }

    @Test func badConfigurationIsRefusedWithTheReason() async throws {
        let unknown = try ServeProcess(["--pipeline", "nope"])
        #expect(try await unknown.waitForExit() == 1)
        #expect(unknown.stderr.contains(#"pipelines.json: no pipeline named "nope"; the file defines: standard, strict, passthrough, low-bandwidth"#))
        let badTimes = try ServeProcess(["--idle-warning", "20", "--idle-timeout", "15"])
        #expect(try await badTimes.waitForExit() != 0)
        #expect(badTimes.stderr.contains("idle-warning must be shorter than idle-timeout"))
        let badEnv = try ServeProcess([], environment: ["FRAMEPIPE_PING_INTERVAL": "soon"])
        #expect(try await badEnv.waitForExit() != 0)
        #expect(badEnv.stderr.contains("FRAMEPIPE_PING_INTERVAL=soon is not a valid value"))
        let unsigned = try ServeProcess(["--webhook", "https://pager.example/hook"])
        #expect(try await unsigned.waitForExit() != 0)
        #expect(unsigned.stderr.contains("--webhook needs --webhook-secret-file"))
        let badHook = try ServeProcess(["--webhook", "pager.example/hook"])
        #expect(try await badHook.waitForExit() != 0)
        #expect(badHook.stderr.contains(#"--webhook (FRAMEPIPE_WEBHOOK) must be an http:// or https:// URL, got "pager.example/hook""#))
        let badLogs = try ServeProcess(["--log-format", "xml"])
        #expect(try await badLogs.waitForExit() != 0)
        #expect(badLogs.stderr.contains("--log-format (FRAMEPIPE_LOG_FORMAT) must be text or json, got xml"))
        let badFile = try ServeProcess(["--config", "/nonexistent.json"])
        #expect(try await badFile.waitForExit() == 1)
        #expect(badFile.stderr.contains("/nonexistent.json: 1 problem"))
        let badLimit = try ServeProcess(["--max-streams=-1"])
        #expect(try await badLimit.waitForExit() != 0)
        #expect(badLimit.stderr.contains("--max-streams (FRAMEPIPE_MAX_STREAMS) must be 0 or more, got -1"))
    }

    @Test func startedFromAnotherDirectoryItSaysWhereItLookedAndHowToPointIt() async throws {
        let elsewhere = try TemporaryFile("unused")
        defer { elsewhere.remove() }
        let server = try ServeProcess([], directory: elsewhere.directory)
        #expect(try await server.waitForExit() == 1)
        #expect(server.stderr.contains("pipelines.json: 1 problem"))
        #expect(server.stderr.contains("no such file in \(elsewhere.directory.path) (the working directory); give its full path with --config"))
    }

    @Test func theBannerSaysWhereToGoAndMatchesTheReadme() async throws {
        let server = try ServeProcess([])
        let port = try await server.port()
        #expect(try await server.stderrContains("framepipe is listening\n  dashboard   http://127.0.0.1:\(port)/\n  camera      http://127.0.0.1:\(port)/stream"), "\(server.stderr)")
        #expect(try await server.stderrContains("  auth        off: listening on this machine only"), "\(server.stderr)")
        kill(server.process.processIdentifier, SIGTERM)
        #expect(try await server.waitForExit() == 0)
        let readme = try String(contentsOf: packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let begin = try #require(readme.range(of: "<!-- banner:begin -->\n```\n"))
        let end = try #require(readme.range(of: "\n```\n<!-- banner:end -->"))
        let banner = StartupBanner(configuration: RelayConfiguration(), port: 8080, pipeline: "standard").text
        #expect(String(readme[begin.upperBound..<end.lowerBound]) == banner, "README's banner is not what serve prints on defaults")
    }

    @Test func withoutAuthItRefusesToListenBeyondLoopback() async throws {
        let open = try ServeProcess(["--host", "0.0.0.0"])
        #expect(try await open.waitForExit() == 1)
        #expect(open.stderr.contains("refusing to listen on 0.0.0.0 with auth off"))
        let shortSecret = FileManager.default.temporaryDirectory.appendingPathComponent("framepipe-short-\(UUID().uuidString)")
        try Data("short".utf8).write(to: shortSecret)
        defer { try? FileManager.default.removeItem(at: shortSecret) }
        let weak = try ServeProcess(["--host", "0.0.0.0", "--jwt-secret-file", shortSecret.path])
        #expect(try await weak.waitForExit() != 0)
        #expect(weak.stderr.contains("holds 5 bytes; an HS256 secret needs at least 32"))
        // (That --insecure lets it start is checked without listening beyond
        // loopback, in AuthTests: tests listen on 127.0.0.1 only.)
    }
}
