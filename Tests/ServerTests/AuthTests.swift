@testable import Access
@testable import RelayCore
import Foundation
@testable import FramepipeServer
@testable import Pipeline
import Testing

/// Tokens on both sockets and the JSON API, refused before the upgrade
/// with 401 (no valid token) or 403 (valid, but not for this).
@Suite("Auth", .timeLimit(.minutes(1)))
struct AuthTests {
    static let authed = RelayConfiguration.test { $0.auth = TestTokens.settings }

    @Test func missingTokenIsRefusedWith401OnBothSockets() async throws {
        try await withRelay(Self.authed) { relay in
            for path in ["/ws/viewer", "/ws/stream/P-1"] {
                let refused = try await RawHTTP.get(port: relay.port, path: path, upgrade: true)
                #expect(refused.status == 401)
                #expect(refused.reason == "a token is required")
                #expect(refused.headers["www-authenticate"] == "Bearer")
            }
        }
    }

    @Test func expiredBadSignatureAndMalformedTokensAre401() async throws {
        let expired = try await TestTokens.hs256(.viewer, ["*"], ttl: .seconds(60), now: Date().addingTimeInterval(-3600))
        let forged = try await TestTokens.hs256(.viewer, ["*"], secret: TestTokens.otherSecret)
        // alg "none": an unsigned token must never pass.
        let unsigned = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4Iiwicm9sZSI6InZpZXdlciIsInN0cmVhbXMiOlsiKiJdLCJleHAiOjk5OTk5OTk5OTl9."
        try await withRelay(Self.authed) { relay in
            let cases = [(expired, "token expired"), (forged, "token signature is not valid"),
                         ("not-a-token", "token is not a JWT"), (unsigned, "token algorithm none is not accepted (HS256, RS256 or ES256)")]
            for (token, reason) in cases {
                for path in ["/ws/viewer?token=\(token)", "/ws/stream/P-1?token=\(token)"] {
                    let refused = try await RawHTTP.get(port: relay.port, path: path, upgrade: true)
                    #expect(refused.status == 401, "\(reason)")
                    #expect(refused.reason == reason)
                }
            }
            let metrics = try await RawHTTP.get(port: relay.port, path: "/metrics", headers: [
                "Authorization": "Bearer \(try await TestTokens.hs256(.viewer, ["*"]))",
            ]).text
            #expect(metrics.contains(#"framepipe_auth_refusals_total{reason="expired"} 2"#))
            #expect(metrics.contains(#"framepipe_auth_refusals_total{reason="bad_signature"} 2"#))
        }
    }

    @Test func outOfScopeAndWrongRoleAre403() async throws {
        let streamer = try await TestTokens.hs256(.streamer, ["P-DHE-*"])
        let viewer = try await TestTokens.hs256(.viewer, ["P-DHE-001"])
        try await withRelay(Self.authed) { relay in
            let cases = [
                ("/ws/stream/P-ICU-1?token=\(streamer)", "the token does not cover stream P-ICU-1"),
                ("/ws/stream/P-DHE-001?token=\(viewer)", "a viewer token cannot publish a stream"),
                ("/ws/viewer?token=\(streamer)", "a streamer token cannot watch"),
                ("/ws/viewer?streams=P-DHE-001,P-DHE-002&token=\(viewer)", "the token does not cover stream P-DHE-002"),
            ]
            for (path, reason) in cases {
                let refused = try await RawHTTP.get(port: relay.port, path: path, upgrade: true)
                #expect(refused.status == 403, "\(path)")
                #expect(refused.reason == reason)
            }
            // In scope: let in.
            #expect(try await RawHTTP.get(port: relay.port, path: "/ws/stream/P-DHE-007?token=\(streamer)", upgrade: true).status == 101)
            #expect(try await RawHTTP.get(port: relay.port, path: "/ws/viewer?streams=P-DHE-001&token=\(viewer)", upgrade: true).status == 101)
            // Tokens never reach the log, at any level: refusals log the path without its query.
            try await relay.eventually("refusals logged") { relay.log.all.filter { $0.message == "WebSocket upgrade refused" }.count == 4 }
            let logged = relay.log.all.map { "\($0.message) \($0.metadata)" }.joined(separator: "\n")
            #expect(!logged.contains(streamer) && !logged.contains(viewer))
            #expect(!logged.contains(String(streamer.split(separator: ".")[2])))
        }
    }

    @Test func tokenTravelsInAuthorizationHeaderOrSubprotocol() async throws {
        let hs = try await TestTokens.hs256(.viewer, ["*"])
        let es = try await TestTokens.es256(.viewer, ["*"])
        try await withRelay(Self.authed) { relay in
            let header = try await RawHTTP.get(port: relay.port, path: "/ws/viewer", upgrade: true, headers: ["Authorization": "Bearer \(es)"])
            #expect(header.status == 101)
            // Browsers cannot set headers on a WebSocket: the token rides as a subprotocol, and `framepipe` is echoed.
            let browser = try await RawHTTP.get(port: relay.port, path: "/ws/viewer", upgrade: true,
                                                headers: ["Sec-WebSocket-Protocol": "framepipe, \(hs)"])
            #expect(browser.status == 101)
            #expect(browser.headers["sec-websocket-protocol"] == "framepipe")
        }
    }

    @Test func scopedViewerNeverSeesAnotherStreamsIdOrFrames() async throws {
        let publisher = try await TestTokens.hs256(.streamer, ["*"])
        let wardA = try await TestTokens.hs256(.viewer, ["P-A-*"])
        try await withRelay(Self.authed) { relay in
            let a1 = try await relay.streamer("P-A-1", token: publisher)
            let b1 = try await relay.streamer("P-B-1", token: publisher)
            a1.send(TestFrames.jpeg(0))
            b1.send(TestFrames.jpeg(0))
            let all = try await relay.viewer("format=binary&token=\(try await TestTokens.hs256(.viewer, ["*"]))")
            try await relay.eventually("both streams started") {
                all.json(type: "stream_started").count + (all.json(type: "viewer_connected").first?["active_streams"]?.arrayValue?.count ?? 0) == 2
            }

            let scoped = try await relay.viewer("format=binary&token=\(wardA)")
            let hello = try #require(scoped.json(type: "viewer_connected").first)
            #expect(hello["active_streams"] == .array([.string("P-A-1")]))
            // Asking for a stream outside the token after connecting changes nothing.
            scoped.send(#"{"type":"subscribe","streams":["P-A-1","P-A-2","P-B-1","P-B-2"]}"#)
            let a2 = try await relay.streamer("P-A-2", token: publisher)
            let b2 = try await relay.streamer("P-B-2", token: publisher)
            for i in 1...5 {
                a1.send(TestFrames.jpeg(i)); b1.send(TestFrames.jpeg(i)); a2.send(TestFrames.jpeg(i)); b2.send(TestFrames.jpeg(i))
                // In step: each round reaches the viewer of every stream before the next is sent.
                let seq: JSONValue = .number(Double(i)), fresh: JSONValue = .number(Double(i - 1))
                try await all.eventually("round \(i)") {
                    let seen = all.binaryFrames.map(\.header)
                    return ["P-A-1", "P-B-1"].allSatisfy { id in seen.contains { $0["stream_id"] == .string(id) && $0["seq"] == seq } }
                        && ["P-A-2", "P-B-2"].allSatisfy { id in seen.contains { $0["stream_id"] == .string(id) && $0["seq"] == fresh } }
                }
            }
            try await scoped.waitFor("P-A-2 started") { $0["type"] == .string("stream_started") && $0["stream_id"] == .string("P-A-2") }
            try await all.waitFor("P-B-2 started") { $0["type"] == .string("stream_started") && $0["stream_id"] == .string("P-B-2") }
            await b1.close()
            await b2.close()
            try await all.waitFor("P-B-2 ended") { $0["type"] == .string("stream_ended") && $0["stream_id"] == .string("P-B-2") }
            try await relay.eventually("scoped viewer has frames of P-A-2") {
                scoped.binaryFrames.contains { $0.header["stream_id"] == .string("P-A-2") }
            }
            let ids = Set(scoped.json.compactMap { $0["stream_id"]?.stringValue } + scoped.binaryFrames.compactMap { $0.header["stream_id"]?.stringValue })
            #expect(ids == ["P-A-1", "P-A-2"])
            #expect(!scoped.messages.contains { if case .text(let t) = $0 { t.contains("P-B") } else { false } })
            await a1.close(); await a2.close(); await all.close(); await scoped.close()
        }
    }

    @Test func jsonAPIAndMetricsNeedATokenAndAreScoped() async throws {
        let publisher = try await TestTokens.hs256(.streamer, ["*"])
        let wardA = try await TestTokens.hs256(.viewer, ["P-A-*"])
        let everyone = try await TestTokens.hs256(.viewer, ["*"])
        try await withRelay(Self.authed) { relay in
            let a = try await relay.streamer("P-A-1", token: publisher)
            let b = try await relay.streamer("P-B-1", token: publisher)
            a.send(TestFrames.jpeg(0)); b.send(TestFrames.jpeg(0))
            func get(_ path: String, _ token: String?) async throws -> RawHTTP.Response {
                try await RawHTTP.get(port: relay.port, path: path, headers: token.map { ["Authorization": "Bearer \($0)"] } ?? [:])
            }
            try await relay.eventually("both streams live") {
                (try JSONParser.parse(try await get("/api/streams", everyone).text)).arrayValue?.count == 2
            }
            for path in ["/api/streams", "/api/viewers", "/api/pipelines", "/metrics", "/api/streams/P-A-1/snapshot.jpg"] {
                #expect(try await get(path, nil).status == 401, "\(path)")
            }
            #expect(try await get("/healthz", nil).status == 200)
            #expect(try await get("/", nil).status == 200)
            let scoped = try JSONParser.parse(try await get("/api/streams", wardA).text)
            #expect(scoped.arrayValue?.map { $0["id"] } == [.string("P-A-1")])
            let snapshot = try await get("/api/streams/P-A-1/snapshot.jpg", wardA)
            #expect(snapshot.status == 200, "\(snapshot.status) \(snapshot.status == 200 ? "" : snapshot.text)")
            #expect(try await get("/api/streams/P-B-1/snapshot.jpg", wardA).status == 404)
            #expect(try await get("/metrics", wardA).status == 403)
            #expect(try await get("/metrics", everyone).status == 200)
            #expect(try await get("/api/streams", publisher).status == 403)
            let session = try JSONParser.parse(try await get("/api/session", wardA).text)
            #expect(session["auth"] == .string("on"))
            #expect(session["streams"] == .array([.string("P-A-*")]))
            await a.close(); await b.close()
        }
    }

    @Test func withoutAuthTheRelayListensOnLoopbackOnlyUnlessInsecure() async throws {
        let pipelines = try PipelineConfigLoader(registry: .builtIn).load(text: testPipelines)
        #expect(throws: RelayServer.InsecureListen.self) {
            try RelayServer(configuration: RelayConfiguration(host: "0.0.0.0", port: 0), pipelines: pipelines)
        }
        _ = try RelayServer(configuration: RelayConfiguration(host: "0.0.0.0", port: 0, insecure: true), pipelines: pipelines)
        _ = try RelayServer(configuration: RelayConfiguration(host: "0.0.0.0", port: 0, auth: TestTokens.settings), pipelines: pipelines)
        _ = try RelayServer(configuration: RelayConfiguration(host: "localhost", port: 0), pipelines: pipelines)
    }

    @Test func scopesMatchExactIdsPrefixesAndAll() {
        let scope = StreamScope(["P-DHE-*", "ICU-7"])
        #expect(scope.allows("P-DHE-001"))
        #expect(scope.allows("ICU-7"))
        #expect(!scope.allows("ICU-70"))
        #expect(!scope.allows("P-DH"))
        #expect(StreamScope.all.allows("anything"))
        #expect(StreamScope.isValidPattern("P-*") && StreamScope.isValidPattern("*") && !StreamScope.isValidPattern("P*X") && !StreamScope.isValidPattern(""))
    }

    @Test func tokenCommandMintsWhatTheRelayAccepts() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("framepipe-token-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let secretFile = dir.appendingPathComponent("secret")
        try Data(TestTokens.secret + [0x0A]).write(to: secretFile)
        let minted = try await runFramepipe(["token", "--secret-file", secretFile.path, "--role", "streamer", "--stream", "P-DHE-*", "--ttl", "8h"])
        #expect(minted.status == 0, "\(minted.err)")
        let grant = try await TokenAuthority(settings: TestTokens.settings).verify(minted.out.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(grant.roles == [.streamer])
        #expect(grant.scope == StreamScope(["P-DHE-*"]))
        #expect(abs(grant.expires.timeIntervalSinceNow - 8 * 3600) < 60)

        let short = dir.appendingPathComponent("short")
        try Data("tooshort".utf8).write(to: short)
        let refused = try await runFramepipe(["token", "--secret-file", short.path, "--stream", "*"])
        #expect(refused.status != 0)
        #expect(refused.err.contains("at least 32"))
        let badPattern = try await runFramepipe(["token", "--secret-file", secretFile.path, "--stream", "a b"])
        #expect(badPattern.err.contains("--stream a b is not a stream id"))
    }
}
