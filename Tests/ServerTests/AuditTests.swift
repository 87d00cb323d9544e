@testable import Access
import Foundation
@testable import FramepipeServer
@testable import Pipeline
import TestFixtures
import Testing

/// The audit trail: who watched or published which stream, from where, for
/// how long, and every refused upgrade or API request, one JSON line each,
/// never holding a token.
@Suite("Audit trail", .timeLimit(.minutes(2)))
struct AuditTests {
    static func lines(_ path: String) throws -> [JSONValue] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { try JSONParser.parse(String($0)) }
    }

    @Test func aWatchedSessionLeavesExactlyItsTwoLinesAndARefusalItsOne() async throws {
        let file = try TemporaryFile("audit.jsonl")
        defer { file.remove() }
        let nurse = try await TestTokens.hs256(.viewer, ["P-*"], subject: "nurse-7")
        let camera = try await TestTokens.hs256(.streamer, ["P-1"], subject: "bed-12")
        let configuration = RelayConfiguration.test {
            $0.auth = TestTokens.settings
            $0.auditLogPath = file.path
        }
        var viewerID = ""
        try await withRelay(configuration) { relay in
            let viewer = try await relay.viewer("streams=P-1&token=\(nurse)")
            viewerID = viewer.json(type: "viewer_connected").first?["viewer_id"]?.stringValue ?? ""
            let streamer = try await relay.streamer("P-1", token: camera)
            for i in 0..<3 {
                streamer.send(TestFrames.jpeg(i))
                try await viewer.waitFor("frame \(i)") { $0["type"] == .string("frame") && $0["seq"] == .number(Double(i)) }
            }
            await viewer.close()
            await streamer.close()
            let refused = try await RawHTTP.get(port: relay.port, path: "/ws/viewer?streams=P-1", upgrade: true)
            #expect(refused.status == 401)
            let api = try await RawHTTP.get(port: relay.port, path: "/api/streams?token=not-a-token")
            #expect(api.status == 401)
            try await relay.eventually("six lines written") { ((try? Self.lines(file.path)) ?? []).count == 6 }
        }
        let text = try String(contentsOfFile: file.path, encoding: .utf8)
        #expect(!text.contains(nurse) && !text.contains(camera) && !text.contains("not-a-token"), "a token in the audit trail")
        let lines = try Self.lines(file.path)
        let watched = lines.filter { $0["session"] == .string(viewerID) }
        #expect(watched.map { $0["event"] } == [.string("session_started"), .string("session_ended")])
        let ended = try #require(watched.last)
        #expect(ended["kind"] == .string("viewer"))
        #expect(ended["subject"] == .string("nurse-7"))
        #expect(ended["jti"] == TestTokens.claim("jti", of: nurse))
        #expect(ended["role"] == .string("viewer"))
        #expect(ended["client"] == .string("127.0.0.1"))
        #expect(ended["streams"] == .array([.string("P-1")]))
        #expect(ended["frames"] == .number(3))
        #expect(ended["end_reason"] == .string("closed"))
        #expect((ended["duration_s"]?.numberValue ?? -1) > 0)
        #expect(ended["time"]?.stringValue?.hasSuffix("Z") == true)
        let published = lines.filter { $0["kind"] == .string("streamer") }
        #expect(published.map { $0["event"] } == [.string("session_started"), .string("session_ended")])
        #expect(published.last?["frames"] == .number(3))
        #expect(published.last?["subject"] == .string("bed-12"))
        let refusals = lines.filter { $0["event"] == .string("refused") }
        #expect(refusals.count == 2)
        #expect(refusals.first?["what"] == .string("upgrade"))
        #expect(refusals.first?["path"] == .string("/ws/viewer"))
        #expect(refusals.first?["status"] == .number(401))
        #expect(refusals.first?["reason"] == .string("a token is required"))
        #expect(refusals.last?["what"] == .string("http"))
        #expect(refusals.last?["path"] == .string("/api/streams"))
        #expect(refusals.last?["reason"] == .string("token is not a JWT"))
    }

    /// /dev/full fails every write with ENOSPC, as a full disk does.
    @Test func aFullDiskLosesAuditLinesLoudlyButNotTheRelay() async throws {
        let configuration = RelayConfiguration.test { $0.auditLogPath = "/dev/full" }
        try await withRelay(configuration) { relay in
            let viewer = try await relay.viewer()
            let streamer = try await relay.streamer("P-1")
            streamer.send(TestFrames.jpeg(0))
            try await viewer.waitFor(type: "frame", stream: "P-1")
            try await relay.eventually("failure logged") {
                relay.log.contains("cannot write to the audit log; lines are lost until it works again")
            }
            let failures = relay.log.all.filter { $0.message == "cannot write to the audit log; lines are lost until it works again" }
            #expect(failures.count == 1, "one line per failing streak")
            let metrics = try await RawHTTP.get(port: relay.port, path: "/metrics").text
            #expect(metrics.contains(#"framepipe_audit_lines_lost_total{why="write_failed"}"#))
            await viewer.close(); await streamer.close()
        }
    }

    @Test func anAuditLogThatCannotBeOpenedStopsTheStart() async throws {
        let configuration = RelayConfiguration.test { $0.auditLogPath = "/nonexistent-dir/audit.jsonl" }
        await #expect(throws: AuditLogUnwritable.self) {
            try await withRelay(configuration) { _ in }
        }
    }
}
