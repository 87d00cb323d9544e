import Foundation
import JWTKit

/// Verifies access tokens with the configured HS256 secret and/or ES256
/// public key, and turns them into `AccessGrant`s.
///
/// The key is chosen by the token's `alg` header, and only HS256 and ES256
/// are accepted, so a token can never pick a weaker algorithm or make a
/// public key serve as an HMAC secret. jwt-kit does the signature and the
/// claims; this type decides what its errors mean for a client (401/403).
public final class TokenAuthority: Sendable {
    private let hs256: JWTKeyCollection?
    private let es256: JWTKeyCollection?
    /// Consulted on every verification, so a revoked token is refused everywhere a token is checked.
    let revocations: Revocations

    public struct InvalidKey: Error, CustomStringConvertible {
        public let description: String
    }

    init(settings: AuthSettings, revocations: Revocations = Revocations()) async throws {
        self.revocations = revocations
        if let secret = settings.hmacSecret {
            guard secret.count >= AuthSettings.minimumSecretBytes else {
                throw InvalidKey(description: "the HS256 secret must be at least \(AuthSettings.minimumSecretBytes) bytes, got \(secret.count)")
            }
            hs256 = await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        } else {
            hs256 = nil
        }
        if let pem = settings.ecdsaPublicKeyPEM {
            do {
                es256 = await JWTKeyCollection().add(ecdsa: try ES256PublicKey(pem: pem))
            } catch {
                throw InvalidKey(description: "the ES256 public key is not a PEM P-256 public key: \(error)")
            }
        } else {
            es256 = nil
        }
    }

    /// The grant a token carries, or why it carries none.
    public func verify(_ token: String) async throws(AuthFailure) -> AccessGrant {
        let keys: JWTKeyCollection
        switch Self.algorithm(of: token) {
        case nil:
            throw AuthFailure(kind: .malformed, reason: "token is not a JWT")
        case "HS256"?:
            guard let hs256 else { throw AuthFailure(kind: .unsupportedAlgorithm, reason: "HS256 tokens are not accepted here") }
            keys = hs256
        case "ES256"?:
            guard let es256 else { throw AuthFailure(kind: .unsupportedAlgorithm, reason: "ES256 tokens are not accepted here") }
            keys = es256
        case let other?:
            throw AuthFailure(kind: .unsupportedAlgorithm, reason: "token algorithm \(other) is not accepted (HS256 or ES256)")
        }
        let claims: AccessClaims
        do {
            claims = try await keys.verify(token, as: AccessClaims.self)
        } catch let error as JWTError {
            switch error.errorType {
            case .claimVerificationFailure where error.failedClaim is ExpirationClaim:
                throw AuthFailure(kind: .expired, reason: "token expired")
            case .signatureVerificationFailed:
                throw AuthFailure(kind: .badSignature, reason: "token signature is not valid")
            default:
                throw AuthFailure(kind: .malformed, reason: "token is not valid: \(error.reason ?? "\(error.errorType)")")
            }
        } catch {
            throw AuthFailure(kind: .malformed, reason: "token claims are missing or of the wrong type (sub, exp, role, streams)")
        }
        guard claims.streams.allSatisfy(StreamScope.isValidPattern) else {
            throw AuthFailure(kind: .malformed, reason: "token names an invalid stream pattern")
        }
        let grant = AccessGrant(subject: claims.sub.value, role: claims.role, scope: StreamScope(claims.streams),
                                tokenID: claims.jti?.value ?? claims.sub.value, expires: claims.exp.value,
                                jti: claims.jti?.value, issuedAt: claims.iat?.value)
        if revocations.isRevoked(grant) { throw AuthFailure(kind: .revoked, reason: "token revoked") }
        return grant
    }

    /// The `alg` of a compact JWT's header, read without trusting anything else in it.
    static func algorithm(of token: String) -> String? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let header = Base64URL.decode(parts[0]),
              let object = try? JSONSerialization.jsonObject(with: header) as? [String: Any]
        else { return nil }
        return object["alg"] as? String
    }
}

/// base64url without padding, as JWTs use it.
enum Base64URL {
    static func decode(_ text: Substring) -> Data? {
        var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.count % 4 != 0 { s += "=" }
        return Data(base64Encoded: s)
    }
}
