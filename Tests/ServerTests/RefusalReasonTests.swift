@testable import Access
import Foundation
@testable import FramepipeServer
@testable import Pipeline
import Testing

/// Every refusal before or at the upgrade tells a client author what was
/// wrong: a JSON body `{"error": code, "reason": sentence}`, and the same
/// sentence in the relay's log at info.
@Suite("Refusal reasons", .timeLimit(.minutes(1)))
struct RefusalReasonTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let path: String
        let headers: [String: String]
        let status: Int
        let code: String
        let reason: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "bad stream id", path: "/ws/stream/bad!id", headers: [:], status: 400, code: "bad_stream_id",
             reason: "stream id must be 1-64 characters of A-Z a-z 0-9 . _ -"),
        Case(name: "bad viewer query", path: "/ws/viewer?format=xml", headers: [:], status: 400, code: "bad_query",
             reason: #"format must be json or binary, got "xml""#),
        Case(name: "bad path", path: "/ws//viewer", headers: [:], status: 400, code: "bad_path",
             reason: "the path has an empty segment (// or a trailing /)"),
        Case(name: "no token", path: "/ws/viewer", headers: [:], status: 401, code: "missing", reason: "a token is required"),
        Case(name: "foreign origin", path: "/ws/viewer", headers: ["Origin": "https://evil.example"], status: 403, code: "origin",
             reason: "origin https://evil.example is not allowed"),
        Case(name: "no such socket", path: "/ws/nope", headers: [:], status: 404, code: "not_found",
             reason: "no WebSocket endpoint at /ws/nope; streamers connect to /ws/stream/{stream_id}, viewers to /ws/viewer"),
    ]

    @Test(arguments: cases)
    func aRefusedUpgradeSaysWhyInItsBodyAndTheLog(_ refusal: Case) async throws {
        try await withRelay(.test { $0.auth = TestTokens.settings }) { relay in
            let response = try await RawHTTP.get(port: relay.port, path: refusal.path, upgrade: true, headers: refusal.headers)
            #expect(response.status == refusal.status)
            #expect(response.headers["content-type"] == "application/json")
            #expect(response.errorCode == refusal.code)
            #expect(response.reason == refusal.reason)
            let logged = relay.log.all.first { $0.message == "WebSocket upgrade refused" }
            #expect(logged?.level == .info)
            #expect(logged?.metadata["reason"] == refusal.reason)
            #expect(logged?.metadata["status"] == "\(refusal.status)")
        }
    }

    @Test func limitsSayWhichLimitWasReached() async throws {
        try await withRelay(.test { $0.limits.maxViewers = 1 }) { relay in
            let viewer = try await relay.viewer()
            let full = try await RawHTTP.get(port: relay.port, path: "/ws/viewer", upgrade: true)
            #expect(full.status == 503)
            #expect(full.errorCode == "max_viewers")
            #expect(full.reason == "the relay has its maximum of 1 viewers")
            await viewer.close()
        }
        // One upgrade per 100 s: a burst of one, whatever the machine's speed.
        try await withRelay(.test { $0.limits.upgradesPerSecondPerAddress = 0.01 }) { relay in
            let viewer = try await relay.viewer()
            let tooFast = try await RawHTTP.get(port: relay.port, path: "/ws/viewer", upgrade: true)
            #expect(tooFast.status == 429)
            #expect(tooFast.errorCode == "upgrade_rate")
            #expect(tooFast.reason == "too many WebSocket upgrades from 127.0.0.1; slow down")
            await viewer.close()
        }
    }

    @Test func aRefusedAPIRequestSaysWhyInItsBodyAndTheLog() async throws {
        try await withRelay(.test { $0.auth = TestTokens.settings }) { relay in
            let response = try await RawHTTP.get(port: relay.port, path: "/api/streams?token=secret-looking")
            #expect(response.status == 401)
            #expect(response.reason == "token is not a JWT")
            let logged = relay.log.all.first { $0.message == "request refused" }
            #expect(logged?.level == .info)
            #expect(logged?.metadata["path"] == "/api/streams")
            #expect(!relay.log.all.contains { $0.metadata.values.contains { $0.contains("secret-looking") } }, "a token in the log")
        }
    }
}
