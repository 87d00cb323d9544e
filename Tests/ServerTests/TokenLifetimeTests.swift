@testable import Access
@testable import RelayCore
import Foundation
@testable import FramepipeServer
@testable import Pipeline
import TestFixtures
import Testing

/// Tokens end on open sockets: at `exp` (after a `token_expiring` warning)
/// unless refreshed over the socket, and at once when revoked.
@Suite("Token lifetime", .timeLimit(.minutes(2)))
struct TokenLifetimeTests {
    /// With `clock`, tokens' `exp` and the revocation file's checks count on
    /// a clock the test moves: nothing here waits for real time to pass.
    static func authed(revocationFile: String? = nil, clock: ManualRelayClock? = nil) -> RelayConfiguration {
        .test {
            $0.auth = TestTokens.settings
            $0.auth.expiryWarning = .seconds(1)
            $0.auth.revocationFile = revocationFile
            if let clock {
                $0.clock = clock
                // The clock jumps to tokens' exp, minutes ahead: no idle close or ping round on the way.
                $0.idleWarning = .seconds(7200); $0.idleTimeout = .seconds(7201)
                $0.pingInterval = .seconds(7200)
            }
        }
    }

    static func exp(of token: String) -> Date {
        Date(timeIntervalSince1970: TestTokens.claim("exp", of: token)!.numberValue!)
    }

    @Test func aViewerIsWarnedOneSecondBeforeExpThenClosedWith4001AtExp() async throws {
        let clock = ManualRelayClock()
        let token = try await TestTokens.hs256(.viewer, ["*"], ttl: .seconds(600))
        let exp = Self.exp(of: token)
        try await withRelay(Self.authed(clock: clock)) { relay in
            let viewer = try await relay.viewer("token=\(token)")
            // The lease has looked at exp and waits for the warning's moment.
            try await clock.waitForSleeper(until: exp.addingTimeInterval(-1))
            clock.advance(to: exp.addingTimeInterval(-1))
            let warning = try await viewer.waitFor(type: "token_expiring")
            #expect(warning["expires_at"] == .number((exp.timeIntervalSince1970 * 1000).rounded()))
            #expect(warning["seconds_left"] == .number(1))
            try await clock.waitForSleeper(until: exp)
            try await viewer.barrier()
            #expect(!viewer.isFinished, "open until exp")
            clock.advance(to: exp)
            try await viewer.waitUntilFinished()
            #expect(viewer.closeFrame?.code == 4001)
            #expect(viewer.closeFrame?.reason == "token_expired")
            try await relay.log.waitFor("viewer removed", ["reason": "token_expired"])
        }
    }

    /// The relay's Close waits for the client's answer on the relay's
    /// clock, and a viewer or streamer that never answers is cut off when
    /// it runs out (a streamer's clock pings wait 1 s, clear of the 2 s).
    @Test(arguments: [TokenRole.viewer, .streamer])
    func aClientThatDoesNotAnswerTheRelaysCloseIsCutOffAfterTheCloseTimeout(_ role: TokenRole) async throws {
        let clock = ManualRelayClock()
        let token = try await TestTokens.hs256(role, ["*"], ttl: .seconds(600))
        let exp = Self.exp(of: token)
        let path = role == .viewer ? "/ws/viewer?token=\(token)" : "/ws/stream/P-1?token=\(token)"
        let cutOff = "\(role == .viewer ? "viewer" : "streamer") did not answer the relay's Close; its connection is closed"
        try await withRelay(Self.authed(clock: clock)) { relay in
            let raw = try await RawWebSocket.connect(port: relay.port, path: path, holdingOpen: true)
            defer { Task { await raw.drop() } }
            try await clock.waitForSleeper(until: exp.addingTimeInterval(-1))
            clock.advance(to: exp)
            var frame = try await raw.readFrame()
            while frame.opcode != 0x8 { frame = try await raw.readFrame() }
            #expect(frame.payload.getInteger(at: frame.payload.readerIndex, as: UInt16.self) == 4001)
            // The relay waits for the answer, on its clock: the timeout is armed and has not run out.
            try await clock.waitForSleeper(until: exp.addingTimeInterval(RelayServer.webSocketCloseTimeout.seconds))
            #expect(!relay.log.contains(cutOff))
            clock.advance(by: RelayServer.webSocketCloseTimeout)
            try await relay.log.waitFor(cutOff)
            if role == .viewer { try await relay.log.waitFor("viewer removed", ["reason": "token_expired"]) }
        }
    }

    @Test func aRefreshedViewerStaysAndKeepsReceiving() async throws {
        let clock = ManualRelayClock()
        let short = try await TestTokens.hs256(.viewer, ["P-*"], ttl: .seconds(600))
        let fresh = try await TestTokens.hs256(.viewer, ["P-1"], ttl: .seconds(1200))
        // Outlives the clock's moves: the relay counts every token's exp on it.
        let publisher = try await TestTokens.hs256(.streamer, ["*"], ttl: .seconds(3600))
        try await withRelay(Self.authed(clock: clock)) { relay in
            let viewer = try await relay.viewer("token=\(short)")
            viewer.send(#"{"type":"refresh","token":"\#(fresh)"}"#)
            let refreshed = try await viewer.waitFor(type: "token_refreshed")
            #expect(refreshed["expires_at"] == .number((Self.exp(of: fresh).timeIntervalSince1970 * 1000).rounded()))
            // Past the first token's exp: the lease looks again and arms for the fresh one's warning instead.
            clock.advance(to: Self.exp(of: short).addingTimeInterval(1))
            try await clock.waitForSleeper(until: Self.exp(of: fresh).addingTimeInterval(-1))
            let streamer = try await relay.streamer("P-1", token: publisher)
            streamer.send(TestFrames.jpeg(0))
            try await viewer.waitFor(type: "frame", stream: "P-1")
            #expect(!viewer.isFinished, "the refreshed socket outlives the first token")
            await streamer.close(); await viewer.close()
        }
    }

    @Test(arguments: [
        ("wider scope", TokenRole.viewer, ["*"], "refresh refused: the refresh token covers streams (*) that this socket's token (P-*) does not"),
        ("other role", .streamer, ["P-1"], "refresh refused: the refresh token does not grant the viewer role this socket has"),
    ])
    func aRefreshThatWidensOrChangesRoleIsRefusedAndTheSocketStillEnds(_ name: String, role: TokenRole, streams: [String], error: String) async throws {
        let clock = ManualRelayClock()
        let short = try await TestTokens.hs256(.viewer, ["P-*"], ttl: .seconds(600))
        let wider = try await TestTokens.hs256(role, streams, ttl: .seconds(1200))
        try await withRelay(Self.authed(clock: clock)) { relay in
            let viewer = try await relay.viewer("token=\(short)")
            viewer.send(#"{"type":"refresh","token":"\#(wider)"}"#)
            let refused = try await viewer.waitFor(type: "error")
            #expect(refused["reason"] == .string(error), "\(name)")
            clock.advance(to: Self.exp(of: short))
            try await viewer.waitUntilFinished()
            #expect(viewer.closeFrame?.code == 4001)
        }
    }

    @Test func aStreamerWhoseTokenExpiresEndsItsStreamForViewers() async throws {
        let clock = ManualRelayClock()
        // Outlives the clock's moves: the relay counts every token's exp on it.
        let watcher = try await TestTokens.hs256(.viewer, ["*"], ttl: .seconds(3600))
        let short = try await TestTokens.hs256(.streamer, ["P-1"], ttl: .seconds(600))
        try await withRelay(Self.authed(clock: clock)) { relay in
            let viewer = try await relay.viewer("token=\(watcher)")
            let streamer = try await relay.streamer("P-1", token: short)
            streamer.send(TestFrames.jpeg(0))
            try await viewer.waitFor(type: "stream_started", stream: "P-1")
            try await clock.waitForSleeper(until: Self.exp(of: short).addingTimeInterval(-1))
            clock.advance(to: Self.exp(of: short).addingTimeInterval(-1))
            try await streamer.waitFor(type: "token_expiring")
            clock.advance(to: Self.exp(of: short))
            let ended = try await viewer.waitFor(type: "stream_ended", stream: "P-1")
            #expect(ended["reason"] == .string("token_expired"))
            try await streamer.waitUntilFinished()
            #expect(streamer.closeFrame?.code == 4001)
            await viewer.close()
        }
    }

    /// The watcher reads the file every 250 ms of the relay's clock: moved here
    /// one check at a time until the socket closes.
    @Test func revokingATokenInTheFileClosesItsSocketsAtTheNextCheckAndRefusesItAfter() async throws {
        let file = try TemporaryFile("revoked.jsonl")
        defer { file.remove() }
        let clock = ManualRelayClock()
        let token = try await TestTokens.hs256(.viewer, ["*"])
        let other = try await TestTokens.hs256(.viewer, ["*"])
        try await withRelay(Self.authed(revocationFile: file.path, clock: clock)) { relay in
            let revoked = try await relay.viewer("token=\(token)")
            let kept = try await relay.viewer("token=\(other)")
            let jti = TestTokens.claim("jti", of: token)!.stringValue!
            let revoke = try await runFramepipe(["revoke", "--file", file.path, "--jti", jti])
            #expect(revoke.status == 0)
            #expect(revoke.out == "revoked token \(jti) in \(file.path)\n")
            try await relay.eventually("closed at a check of the file") {
                clock.advance(by: RevocationFileWatcher.interval)
                return revoked.isFinished
            }
            #expect(revoked.closeFrame?.code == 4003)
            #expect(revoked.closeFrame?.reason == "token_revoked")
            try await kept.barrier()
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
        let clock = ManualRelayClock()
        let before = try await TestTokens.hs256(.viewer, ["*"], now: Date().addingTimeInterval(-5), subject: "ward-3")
        try await withRelay(Self.authed(revocationFile: file.path, clock: clock)) { relay in
            let viewer = try await relay.viewer("token=\(before)")
            #expect(try await runFramepipe(["revoke", "--file", file.path, "--subject", "ward-3"]).status == 0)
            try await relay.eventually("closed at a check of the file") {
                clock.advance(by: RevocationFileWatcher.interval)
                return viewer.isFinished
            }
            #expect(viewer.closeFrame?.code == 4003)
            let after = try await TestTokens.hs256(.viewer, ["*"], now: Date().addingTimeInterval(2), subject: "ward-3")
            let again = try await relay.viewer("token=\(after)")
            try await again.barrier()
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
            try await relay.log.waitFor("revocation list loaded")
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
