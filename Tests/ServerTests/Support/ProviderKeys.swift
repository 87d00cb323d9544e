import Foundation
@testable import FramepipeServer
import JWTKit
import TestFixtures

/// An identity provider's signing keys for the single sign-on tests: RSA
/// (made with openssl, as a provider's would be) and P-256, published as
/// JWKs, signing provider-style tokens (roles and streams in claims of the
/// provider's own naming).
struct ProviderKey: Sendable {
    let kid: String
    let jwk: String
    let signer: JWTKeyCollection

    static func rsa(kid: String) async throws -> ProviderKey {
        let file = try TemporaryFile("rsa.pem")
        defer { file.remove() }
        _ = try await ChildProcess.run(URL(fileURLWithPath: "/usr/bin/openssl"),
                                       ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", file.path])
        let key = try Insecure.RSA.PrivateKey(pem: try String(contentsOfFile: file.path, encoding: .utf8))
        let (n, e) = try key.publicKey.getKeyPrimitives()
        let jwk = #"{"kty":"RSA","use":"sig","alg":"RS256","kid":"\#(kid)","n":"\#(n.base64URL)","e":"\#(e.base64URL)"}"#
        let signer = await JWTKeyCollection().add(rsa: key, digestAlgorithm: .sha256, kid: JWKIdentifier(string: kid))
        return ProviderKey(kid: kid, jwk: jwk, signer: signer)
    }

    static func p256(kid: String) async throws -> ProviderKey {
        let key = ES256PrivateKey()
        let (x, y) = key.publicKey.parameters!
        let jwk = #"{"kty":"EC","crv":"P-256","use":"sig","kid":"\#(kid)","x":"\#(x)","y":"\#(y)"}"#
        let signer = await JWTKeyCollection().add(ecdsa: key, kid: JWKIdentifier(string: kid))
        return ProviderKey(kid: kid, jwk: jwk, signer: signer)
    }

    static func jwks(_ keys: ProviderKey...) -> String { #"{"keys":[\#(keys.map(\.jwk).joined(separator: ","))]}"# }

    /// A token as a hospital's identity provider issues it.
    func token(subject: String = "nurse-7", roles: [String] = ["framepipe-viewer"], streams: String = "P-1 P-2",
               issuer: String = "https://sso.hospital.example/realms/ward", audience: [String] = ["framepipe"],
               ttl: TimeInterval = 600) async throws -> String {
        try await signer.sign(ProviderClaims(
            iss: issuer, aud: audience, sub: subject, exp: Date().addingTimeInterval(ttl).timeIntervalSince1970.rounded(),
            iat: Date().timeIntervalSince1970.rounded(), jti: UUID().uuidString,
            realm_access: .init(roles: roles), framepipe_streams: streams), kid: JWKIdentifier(string: kid))
    }
}

/// Keycloak-like claims: roles under realm_access, streams in a custom claim.
struct ProviderClaims: JWTPayload {
    struct Access: Codable { let roles: [String] }
    let iss: String
    let aud: [String]
    let sub: String
    let exp: Double
    let iat: Double
    let jti: String
    let realm_access: Access
    let framepipe_streams: String

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

extension Data {
    var base64URL: String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
