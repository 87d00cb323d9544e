import Foundation
@testable import FramepipeServer
import Logging
@testable import Pipeline
@testable import Stages
import Synchronization
import Testing
import TestFixtures

/// A log handler that keeps every entry, so tests can assert what an
/// operator would read.
final class CapturedLog: Sendable {
    struct Entry: Sendable {
        let level: Logger.Level
        let message: String
        let metadata: [String: String]
    }

    private let entries = Mutex<[Entry]>([])
    /// Wakes tests waiting for a line, at each one logged.
    private let changes = ChangeSignal()

    func append(_ entry: Entry) {
        entries.withLock { $0.append(entry) }
        changes.changed()
    }
    var all: [Entry] { entries.withLock { $0 } }

    /// The last 40 lines, as an operator would read them: what explains a timed-out wait.
    var recent: String {
        all.suffix(40).map { "\($0.level) \($0.message) \($0.metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))" }
            .joined(separator: "\n")
    }

    /// Waits until a line with `message` and `metadata` is logged, woken by
    /// each line; the timeout only ends a test that is failing anyway.
    func waitFor(_ message: String, _ metadata: [String: String] = [:], timeout: Duration = TestDeadline.event) async throws {
        if await changes.wait(timeout: timeout, until: { contains(message, metadata) }) { return }
        Issue.record("timed out waiting for the log line: \(message) \(metadata)\nlast relay log lines:\n\(recent)")
        throw RelayHandle.TimedOut(what: message)
    }

    func contains(_ message: String, _ metadata: [String: String] = [:]) -> Bool {
        all.contains { e in e.message == message && metadata.allSatisfy { e.metadata[$0.key] == $0.value } }
    }

    struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = self.metadata.merging(event.metadata ?? [:]) { $1 }
            log.append(Entry(level: event.level, message: event.message.description, metadata: merged.mapValues { "\($0)" }))
        }
    }
}

/// A running relay on a free loopback port, for one test.
struct RelayHandle: Sendable {
    let port: Int
    let log: CapturedLog
    /// Where the relay listens: loopback, except behind a test's shaped link.
    var host = "127.0.0.1"
    var ws: String { "ws://\(host):\(port)" }

    /// `query`: the streamer's options without `?` (`flow=credit`).
    func streamer(_ id: String, token: String? = nil, query: String = "") async throws -> TestSocket {
        let items = [token.map { "token=" + $0 }, query.isEmpty ? nil : query].compactMap { $0 }
        return try await TestSocket.connect("\(ws)/ws/stream/\(id)\(items.isEmpty ? "" : "?" + items.joined(separator: "&"))")
    }

    /// A viewer, returned once the server has registered it (it has read
    /// `viewer_connected`), so nothing the test does next can precede it.
    func viewer(_ query: String = "", reading: Bool = true, readDelay: Duration? = nil, answerPings: Bool = false) async throws -> TestSocket {
        let socket = try await TestSocket.connect("\(ws)/ws/viewer\(query.isEmpty ? "" : "?" + query)", reading: reading, readDelay: readDelay, answerPings: answerPings)
        if reading { try await socket.waitFor(type: "viewer_connected") }
        return socket
    }

    /// GETs a JSON API path and parses the body.
    func api(_ path: String) async throws -> JSONValue {
        try JSONParser.parse(try await RawHTTP.get(host: host, port: port, path: path).text)
    }

    /// Waits until `condition` holds, polling; fails the test after `timeout`.
    /// For state only a question shows (the HTTP API, Redis, a receiver's
    /// count): what a socket or the log receives has its own event-woken
    /// wait (`TestSocket.eventually`, `CapturedLog.waitFor`).
    func eventually(_ what: String, timeout: Duration = TestDeadline.event, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        // The relay's own account of what happened is what explains a timeout.
        Issue.record("timed out waiting for: \(what)\nlast relay log lines:\n\(log.recent)")
        throw TimedOut(what: what)
    }

    struct TimedOut: Error { let what: String }
}

extension RelayConfiguration {
    /// Defaults for tests: a free port, no limits, the relay's own timeouts
    /// on a manual clock, and no idle close on the wall clock.
    static func test(_ change: (inout RelayConfiguration) -> Void = { _ in }) -> RelayConfiguration {
        let defaults = RelayConfiguration(host: "127.0.0.1", port: 0)
        var c = defaults
        // Many tests open sockets in quick bursts from one address; the limit tests set their own.
        c.limits = .unlimited
        change(&c)
        // On the wall clock, a loaded machine can hold a test for longer than
        // the idle timeout between a stream's one frame and what the test asks
        // next: a load check saw an auth test take 53 s and find its stream
        // closed as idle (15 s) before it asked for the stream's snapshot. The
        // idle rule's own tests move a manual clock, where the relay's
        // defaults (10 s, 15 s) stay; a test that sets idle times keeps them.
        if c.clock is SystemRelayClock, c.idleWarning == defaults.idleWarning, c.idleTimeout == defaults.idleTimeout {
            c.idleWarning = .seconds(3600)
            c.idleTimeout = .seconds(3610)
        }
        return c
    }
}

let testPipelines = #"""
{"default": "standard", "pipelines": {
  "standard": {"stages": [
    {"stage": "size-limit", "maxBytes": 200000}, {"stage": "base64-validation"}, {"stage": "decode-check", "mode": "full"},
    {"stage": "error-counter", "maxErrors": 10}, {"stage": "downscale", "when": "slow-viewers", "scale": "1/2", "quality": 60},
    {"stage": "fan-out"}]},
  "passthrough": {"stages": [{"stage": "size-limit"}, {"stage": "fan-out"}]}
}}
"""#

/// Runs `body` against a real relay, then stops it. With `pipelinesFile`
/// the pipelines are read from that file, which a reload reads again.
func withRelay(_ configuration: RelayConfiguration = .test(), pipelinesJSON: String = testPipelines, pipelinesFile: String? = nil,
               _ body: (RelayHandle) async throws -> Void) async throws {
    let log = CapturedLog()
    let logger = Logger(label: "framepipe-test") { _ in CapturedLog.Handler(log: log) }
    let source = pipelinesFile.map { PipelineSource(path: $0, registry: .builtIn) }
    let pipelines = try source?.load() ?? PipelineConfigLoader(registry: .builtIn).load(text: pipelinesJSON)
    let server = try RelayServer(configuration: configuration, pipelines: pipelines, source: source, logger: logger)
    let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
    let task = Task {
        defer { portContinuation.finish() }
        try await server.run { port in portContinuation.yield(port) }
    }
    var iterator = ports.makeAsyncIterator()
    guard let port = await iterator.next() else {
        try await task.value  // the reason it did not start
        throw RelayHandle.TimedOut(what: "server start")
    }
    defer { task.cancel() }
    try await body(RelayHandle(port: port, log: log, host: configuration.host))
    task.cancel()
    _ = await task.result
}
