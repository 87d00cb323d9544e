@testable import Access
import Foundation
@testable import FramepipeServer
@testable import Pipeline
import Testing

/// Tokens from a hospital's identity provider: RS256 and ES256 signed with
/// keys from its JWKS, checked for issuer and audience, with the role and
/// streams read from the provider's own claims.
@Suite("Single sign-on", .serialized, .timeLimit(.minutes(2)))
struct SingleSignOnTests {
    static let issuer = "https://sso.hospital.example/realms/ward"

    static func configuration(jwksURL: String? = nil, jwksFile: String? = nil, cooldown: Duration = .seconds(30),
                              refresh: Duration = .seconds(600), clock: any RelayClock = SystemRelayClock()) -> RelayConfiguration {
        .test {
            $0.clock = clock
            $0.auth = AuthSettings(jwksFile: jwksFile, jwksURL: jwksURL, jwksRefresh: refresh, jwksCooldown: cooldown, issuer: issuer,
                                   audience: "framepipe",
                                   claims: ClaimMapping(role: "realm_access.roles", viewerRole: "framepipe-viewer",
                                                        streamerRole: "framepipe-streamer", streams: "framepipe_streams"))
        }
    }

    @Test func aProviderStyleRS256TokenFromTheJWKSURLLetsAViewerWatchItsStreams() async throws {
        let provider = try await JWKSServer()
        let key = try await ProviderKey.rsa(kid: "2026-11")
        provider.serve(ProviderKey.jwks(key))
        try await withRelay(Self.configuration(jwksURL: provider.url)) { relay in
            let token = try await key.token()
            let session = try JSONParser.parse(try await RawHTTP.get(port: relay.port, path: "/api/session",
                                                                     headers: ["Authorization": "Bearer \(token)"]).text)
            #expect(session["subject"] == .string("nurse-7"))
            #expect(session["roles"] == .array([.string("viewer")]))
            #expect(session["streams"] == .array([.string("P-1"), .string("P-2")]))
            let viewer = try await relay.viewer("streams=P-1&token=\(token)")
            await viewer.close()
            let outside = try await RawHTTP.get(port: relay.port, path: "/ws/viewer?streams=P-9&token=\(token)", upgrade: true)
            #expect(outside.status == 403)
        }
        await provider.stop()
    }

    @Test(arguments: [
        ("another issuer", "iss", "token issuer is not https://sso.hospital.example/realms/ward"),
        ("another audience", "aud", "token audience does not include framepipe"),
        ("no framepipe role", "role", "token grants none of framepipe-viewer, framepipe-streamer, admin in realm_access.roles"),
    ])
    func aTokenForSomethingElseIsRefusedWithTheReason(_ name: String, change: String, reason: String) async throws {
        let provider = try await JWKSServer()
        let key = try await ProviderKey.rsa(kid: "k1")
        provider.serve(ProviderKey.jwks(key))
        try await withRelay(Self.configuration(jwksURL: provider.url)) { relay in
            let token = try await key.token(
                roles: change == "role" ? ["offline_access"] : ["framepipe-viewer"],
                issuer: change == "iss" ? "https://evil.example" : Self.issuer,
                audience: change == "aud" ? ["billing"] : ["framepipe"])
            let refused = try await RawHTTP.get(port: relay.port, path: "/ws/viewer?token=\(token)", upgrade: true)
            #expect([401, 403].contains(refused.status), "\(name)")
            #expect(refused.reason == reason, "\(name)")
        }
        await provider.stop()
    }

    /// The provider rotates its key: the first token signed with the new key
    /// makes the relay fetch the set once; made-up key ids do not make it
    /// fetch again and again.
    @Test func aRotatedKeyIsFetchedOnceOnItsFirstTokenAndUnknownKeyIdsDoNotFloodTheProvider() async throws {
        let provider = try await JWKSServer()
        let old = try await ProviderKey.rsa(kid: "2026-10")
        let new = try await ProviderKey.p256(kid: "2026-11")
        provider.serve(ProviderKey.jwks(old))
        // The cooldown counts the relay's clock, which the test moves.
        let clock = ManualRelayClock()
        try await withRelay(Self.configuration(jwksURL: provider.url, cooldown: .seconds(1), clock: clock)) { relay in
            #expect(provider.fetches == 1, "fetched once at start")
            let before = try await old.token()
            await (try await relay.viewer("token=\(before)")).close()
            #expect(provider.fetches == 1, "a known key needs no fetch")
            provider.serve(ProviderKey.jwks(old, new))
            let after = try await new.token()
            // Within the cooldown after the start's fetch, an unknown key id is refused without a fetch.
            #expect(try await RawHTTP.get(port: relay.port, path: "/ws/viewer?token=\(after)", upgrade: true).status == 401)
            #expect(provider.fetches == 1, "no fetch within the cooldown")
            clock.advance(by: .seconds(1))
            await (try await relay.viewer("token=\(after)")).close()
            #expect(provider.fetches == 2, "the new key id is fetched once the cooldown has passed")
            // Tokens naming keys the provider never had: refused, and no fetch within the cooldown.
            let stranger = try await ProviderKey.p256(kid: "made-up")
            for _ in 0..<20 {
                let forged = try await stranger.token()
                let refused = try await RawHTTP.get(port: relay.port, path: "/ws/viewer?token=\(forged)", upgrade: true)
                #expect(refused.status == 401)
                #expect(refused.reason == "token is signed with key made-up, which the identity provider's key set does not have")
            }
            #expect(provider.fetches == 2, "no fetch within the cooldown")
            clock.advance(by: .seconds(1))
            let forged = try await stranger.token()
            #expect(try await RawHTTP.get(port: relay.port, path: "/ws/viewer?token=\(forged)", upgrade: true).status == 401)
            #expect(provider.fetches == 3, "one fetch once the cooldown has passed")
        }
        await provider.stop()
    }

    /// The provider retires a key: the periodic fetch drops it, on the
    /// relay's clock. A fetch that fails keeps the keys and is tried again
    /// after 5 s, then 10 s, then the period again once one succeeds.
    @Test func aRetiredKeyIsRefusedAfterThePeriodicFetchAndAFailedFetchIsRetriedSooner() async throws {
        let provider = try await JWKSServer()
        let old = try await ProviderKey.rsa(kid: "2026-10")
        let new = try await ProviderKey.p256(kid: "2026-11")
        provider.serve(ProviderKey.jwks(old, new))
        let clock = ManualRelayClock()
        let start = clock.now
        // Tokens for an hour: the relay's clock passes 600 s here, and a token's `exp` is read on it.
        try await withRelay(Self.configuration(jwksURL: provider.url, refresh: .seconds(300), clock: clock)) { relay in
            #expect(provider.fetches == 1, "fetched once at start")
            await (try await relay.viewer("token=\(try await old.token(ttl: 3600))")).close()
            provider.serve(ProviderKey.jwks(new))
            try await clock.waitForSleeper(until: start.addingTimeInterval(300))
            clock.advance(to: start.addingTimeInterval(299.999))
            #expect(clock.isWaiting(until: start.addingTimeInterval(300)))
            #expect(provider.fetches == 1, "not before the period")
            clock.advance(to: start.addingTimeInterval(300))
            try await relay.log.waitFor("JWKS loaded", ["kids": "2026-11"])
            #expect(provider.fetches == 2)
            let retired = try await RawHTTP.get(port: relay.port, path: "/ws/viewer?token=\(try await old.token(ttl: 3600))", upgrade: true)
            #expect(retired.status == 401)
            await (try await relay.viewer("token=\(try await new.token(ttl: 3600))")).close()

            // The provider answers with something that is not a key set: the keys stay, and the fetch is tried again sooner.
            provider.serve("<html>maintenance</html>")
            var due = start.addingTimeInterval(600)
            for (fetch, next) in [(3, 5.0), (4, 10.0)] {
                try await clock.waitForSleeper(until: due)
                clock.advance(to: due)
                try await relay.eventually("fetch \(fetch)") { provider.fetches == fetch }
                due = due.addingTimeInterval(next)
            }
            try await relay.log.waitFor("cannot fetch the JWKS; keeping the keys already loaded")
            await (try await relay.viewer("token=\(try await new.token(ttl: 3600))")).close()
            provider.serve(ProviderKey.jwks(new))
            try await clock.waitForSleeper(until: due)
            clock.advance(to: due)
            try await relay.eventually("fetch 5") { provider.fetches == 5 }
            // Back to the period after a good fetch.
            try await clock.waitForSleeper(until: due.addingTimeInterval(300))
        }
        await provider.stop()
    }

    @Test func anES256ProviderKeyFromAJWKSFileWorksAndTheWrongAlgorithmForAKeyIsRefused() async throws {
        let key = try await ProviderKey.p256(kid: "ec-1")
        let file = try TemporaryFile("jwks.json")
        defer { file.remove() }
        try ProviderKey.jwks(key).write(toFile: file.path, atomically: true, encoding: .utf8)
        try await withRelay(Self.configuration(jwksFile: file.path)) { relay in
            let token = try await key.token(roles: ["framepipe-streamer"], streams: "P-1")
            let streamer = try await relay.streamer("P-1", token: token)
            await streamer.close()
            // An RS256 token that names the EC key: the algorithm must match the key.
            let rsa = try await ProviderKey.rsa(kid: "ec-1")
            let confused = try await rsa.token()
            let refused = try await RawHTTP.get(port: relay.port, path: "/ws/viewer?token=\(confused)", upgrade: true)
            #expect(refused.status == 401)
            #expect(refused.reason == "token algorithm RS256 does not match key ec-1")
        }
    }

    @Test func aJWKSThatCannotBeLoadedStopsTheStartWithTheReason() async throws {
        await #expect { try await withRelay(Self.configuration(jwksURL: "http://127.0.0.1:1/certs")) { _ in } } throws: { error in
            "\(error)".hasPrefix("cannot load the JWKS from http://127.0.0.1:1/certs")
        }
        let file = try TemporaryFile("jwks.json")
        defer { file.remove() }
        try #"{"keys": "none"}"#.write(toFile: file.path, atomically: true, encoding: .utf8)
        await #expect { try await withRelay(Self.configuration(jwksFile: file.path)) { _ in } } throws: { error in
            "\(error)".contains("is not a JWKS")
        }
    }
}
