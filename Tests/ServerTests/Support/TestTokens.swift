@testable import Access
import Foundation
@testable import FramepipeServer
import JWTKit
@testable import Pipeline

/// Keys and tokens for the auth tests: an HS256 secret, an ES256 key pair
/// made per run, and tokens minted the way `framepipe token` mints them.
enum TestTokens {
    static let secret = Array("framepipe-test-secret-0123456789-abcdef".utf8)
    static let otherSecret = Array("not-the-relay-secret-0123456789-abcdef".utf8)
    static let es256 = ES256PrivateKey()

    static var settings: AuthSettings {
        AuthSettings(hmacSecret: secret, ecdsaPublicKeyPEM: es256.publicKey.pemRepresentation)
    }

    static func hs256(_ role: TokenRole, _ streams: [String], ttl: Duration = .seconds(600), now: Date = Date(),
                      secret: [UInt8] = secret, subject: String = "test") async throws -> String {
        try await TokenMinter(key: .hs256(secret)).mint(subject: subject, role: role, streams: streams, ttl: ttl, now: now)
    }

    /// A claim of a token, read without checking it (the tests know their own tokens).
    static func claim(_ name: String, of token: String) -> JSONValue? {
        let payload = token.split(separator: ".")[1]
        guard let data = Base64URL.decode(payload), let json = try? JSONParser.parse(String(decoding: data, as: UTF8.self)) else { return nil }
        return json[name]
    }

    static func es256(_ role: TokenRole, _ streams: [String]) async throws -> String {
        try await TokenMinter(key: .es256(privateKeyPEM: es256.pemRepresentation)).mint(subject: "test", role: role, streams: streams, ttl: .seconds(600))
    }
}
