import Access
import RelayCore
import Foundation
@testable import FramepipeServer
import Pipeline
import TestFixtures
import Testing

/// Tokens end on open sockets: at `exp` (after a `token_expiring` warning)
/// unless refreshed over the socket, and at once when revoked.
@Suite("Token lifetime", .timeLimit(.minutes(2)))
struct TokenLifetimeTests {
    static func authed(revocationFile: String? = nil) -> RelayConfiguration {
        .test {
            $0.auth = TestTokens.settings
            $0.auth.expiryWarning = .seconds(1)
            $0.auth.revocationFile = revocationFile
        }
    }

    /// Waits for the socket to close and returns how long after `deadline` that was.
    static func closedAfter(_ socket: TestSocket, deadline: Date, timeout: Duration = .seconds(8)) async throws -> TimeInterval {
        try await socket.waitUntilFinished(timeout: timeout)
        return Date().timeIntervalSince(deadline)
    }

    @Test func aViewerIsWarnedThenClosedWith4001WithinASecondOfExp() async throws {
        let token = try await TestTokens.hs256(.viewer, ["*"], ttl: .seconds(3))
        let exp = Date(timeIntervalSince1970: TestTokens.claim("exp", of: token)!.numberValue!)
        try await withRelay(Self.authed()) { relay in
            let viewer = try await relay.viewer("token=\(token)")
            let warning = try await viewer.waitFor(type: "token_expiring", timeout: .seconds(4))
            #expect(warning["expires_at"] == .number((exp.timeIntervalSince1970 * 1000).rounded()))
            #expect(Date() < exp, "the warning comes before exp")
            let late = try await Self.closedAfter(viewer, deadline: exp)
            #expect(late < 1.0, "closed \(late) s after exp")
            #expect(viewer.closeFrame?.code == 4001)
            #expect(viewer.closeFrame?.reason == "token_expired")
            try await relay.eventually("logged") { relay.log.contains("viewer removed", ["reason": "token_expired"]) }
        }
    }

    @Test func aRefreshedViewerStaysAndKeepsReceiving() async throws {
        let short = try await TestTokens.hs256(.viewer, ["P-*"], ttl: .seconds(2))
        let fresh = try await TestTokens.hs256(.viewer, ["P-1"], ttl: .seconds(600))
        let publisher = try await TestTokens.hs256(.streamer, ["*"])
        try await withRelay(Self.authed()) { relay in
            let viewer = try await relay.viewer("token=\(short)")
            viewer.send(#"{"type":"refresh","token":"\#(fresh)"}"#)
            let refreshed = try await viewer.waitFor(type: "token_refreshed")
            #expect(refreshed["expires_at"] != nil)
            try await Task.sleep(for: .seconds(3))
            #expect(!viewer.isFinished, "the refreshed socket outlives the first token")
            let streamer = try await relay.streamer("P-1", token: publisher)
            streamer.send(TestFrames.jpeg(0))
            try await viewer.waitFor(type: "frame", stream: "P-1")
            await streamer.close(); await viewer.close()
        }
    }

    @Test(arguments: [
        ("wider scope", TokenRole.viewer, ["*"], "refresh refused: the refresh token covers streams (*) that this socket's token (P-*) does not"),
        ("other role", .streamer, ["P-1"], "refresh refused: the refresh token does not grant the viewer role this socket has"),
    ])
    func aRefreshThatWidensOrChangesRoleIsRefusedAndTheSocketStillEnds(_ name: String, role: TokenRole, streams: [String], error: String) async throws {
        let short = try await TestTokens.hs256(.viewer, ["P-*"], ttl: .seconds(2))
        let wider = try await TestTokens.hs256(role, streams, ttl: .seconds(600))
        try await withRelay(Self.authed()) { relay in
            let viewer = try await relay.viewer("token=\(short)")
            viewer.send(#"{"type":"refresh","token":"\#(wider)"}"#)
            let refused = try await viewer.waitFor(type: "error")
            #expect(refused["reason"] == .string(error), "\(name)")
            try await viewer.waitUntilFinished(timeout: .seconds(4))
            #expect(viewer.closeFrame?.code == 4001)
        }
    }

    @Test func aStreamerWhoseTokenExpiresEndsItsStreamForViewers() async throws {
        let watcher = try await TestTokens.hs256(.viewer, ["*"])
        try await withRelay(Self.authed()) { relay in
            let viewer = try await relay.viewer("token=\(watcher)")
            // Minted once the relay is up: its 3 s start counting now, not
            // before a loaded machine has started the server (it once
            // expired before the first frame, which then never started).
            let short = try await TestTokens.hs256(.streamer, ["P-1"], ttl: .seconds(3))
            let streamer = try await relay.streamer("P-1", token: short)
            streamer.send(TestFrames.jpeg(0))
            try await viewer.waitFor(type: "stream_started", stream: "P-1")
            try await streamer.waitFor(type: "token_expiring", timeout: .seconds(4))
            let ended = try await viewer.waitFor(type: "stream_ended", stream: "P-1", timeout: .seconds(4))
            #expect(ended["reason"] == .string("token_expired"))
            try await streamer.waitUntilFinished()
            #expect(streamer.closeFrame?.code == 4001)
            await viewer.close()
        }
    }

    @Test func revokingATokenInTheFileClosesItsSocketsWithinASecondAndRefusesItAfter() async throws {
        let file = try TemporaryFile("revoked.jsonl")
        defer { file.remove() }
        let token = try await TestTokens.hs256(.viewer, ["*"])
        let other = try await TestTokens.hs256(.viewer, ["*"])
        try await withRelay(Self.authed(revocationFile: file.path)) { relay in
            let revoked = try await relay.viewer("token=\(token)")
            let kept = try await relay.viewer("token=\(other)")
            let jti = TestTokens.claim("jti", of: token)!.stringValue!
            let revoke = try runFramepipe(["revoke", "--file", file.path, "--jti", jti])
            // From when the line is in the file: starting the `framepipe revoke`
            // process on a loaded machine is not the relay's reaction time.
            let at = Date()
            #expect(revoke.status == 0)
            #expect(revoke.out == "revoked token \(jti) in \(file.path)\n")
            let late = try await Self.closedAfter(revoked, deadline: at, timeout: .seconds(3))
            #expect(late < 1.0, "closed \(late) s after the revocation")
            #expect(revoked.closeFrame?.code == 4003)
            #expect(revoked.closeFrame?.reason == "token_revoked")
            #expect(!kept.isFinished)
            let again = try await RawHTTP.get(port: relay.port, path: "/ws/viewer?token=\(token)", upgrade: true)
            #expect(again.status == 401)
            #expect(again.reason == "token revoked")
            let api = try await RawHTTP.get(port: relay.port, path: "/api/streams", headers: ["Authorization": "Bearer \(token)"])
            #expect(api.status == 401)
            await kept.close()
        }
    }

    @Test func revokingASubjectEndsItsEarlierTokensButNotOnesIssuedAfter() async throws {
        let file = try TemporaryFile("revoked.jsonl")
        defer { file.remove() }
        let before = try await TestTokens.hs256(.viewer, ["*"], now: Date().addingTimeInterval(-5), subject: "ward-3")
        try await withRelay(Self.authed(revocationFile: file.path)) { relay in
            let viewer = try await relay.viewer("token=\(before)")
            #expect(try runFramepipe(["revoke", "--file", file.path, "--subject", "ward-3"]).status == 0)
            try await viewer.waitUntilFinished(timeout: .seconds(2))
            #expect(viewer.closeFrame?.code == 4003)
            let after = try await TestTokens.hs256(.viewer, ["*"], now: Date().addingTimeInterval(2), subject: "ward-3")
            let again = try await relay.viewer("token=\(after)")
            #expect(!again.isFinished)
            await again.close()
        }
    }

    @Test func aBadLineInTheRevocationFileIsReportedAndTheRestStillCounts() async throws {
        let file = try TemporaryFile("revoked.jsonl")
        defer { file.remove() }
        let token = try await TestTokens.hs256(.viewer, ["*"])
        let jti = TestTokens.claim("jti", of: token)!.stringValue!
        try #"{"jti": 7}"# .appending("\n{\"jti\":\"\(jti)\",\"at\":1}\n").write(toFile: file.path, atomically: true, encoding: .utf8)
        try await withRelay(Self.authed(revocationFile: file.path)) { relay in
            try await relay.eventually("file loaded") { relay.log.contains("revocation list loaded") }
            #expect(relay.log.contains("revocation file has a bad line; it is skipped",
                                       ["problem": #"line 1: "at" must be a time in ms since the epoch"#]))
            #expect(try await RawHTTP.get(port: relay.port, path: "/ws/viewer?token=\(token)", upgrade: true).status == 401)
        }
    }

    @Test func scopesCoverOnlyWhatTheyAllow() {
        #expect(StreamScope(["*"]).covers(StreamScope(["P-1", "Q-*"])))
        #expect(StreamScope(["P-*"]).covers(StreamScope(["P-DHE-*", "P-1"])))
        #expect(!StreamScope(["P-*"]).covers(StreamScope(["*"])))
        #expect(!StreamScope(["P-DHE-*"]).covers(StreamScope(["P-*"])))
        #expect(!StreamScope(["P-1"]).covers(StreamScope(["P-1*"])))
        #expect(StreamScope(["P-1", "P-2"]).covers(StreamScope(["P-2"])))
    }
}
