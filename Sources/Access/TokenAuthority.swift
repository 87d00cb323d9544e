import Foundation
import JWTKit
import Logging
import Pipeline

/// Verifies access tokens with the configured HS256 secret and/or ES256
/// public key, and turns them into `AccessGrant`s.
///
/// The key is chosen by the token's `alg` header, and only HS256 and ES256
/// are accepted, so a token can never pick a weaker algorithm or make a
/// public key serve as an HMAC secret. jwt-kit does the signature and the
/// claims; this type decides what its errors mean for a client (401/403).
/// Verifies access tokens and turns them into `AccessGrant`s: framepipe's
/// own (HS256 with the shared secret, ES256 with its public key) and an
/// identity provider's (RS256 or ES256 with a key from its JWKS, chosen by
/// the token's `kid`).
///
/// The key is chosen by the token's `alg` (and `kid`), and only HS256,
/// RS256 and ES256 are accepted, each only with a key of its own kind, so a
/// token can never pick a weaker algorithm or make a public key serve as an
/// HMAC secret. jwt-kit does the signature; this type checks `iss`, `aud`,
/// revocation, reads the role and streams through `ClaimMapping`, and
/// decides what each failure means for a client (401/403).
public final class TokenAuthority: Sendable {
    private let hs256: JWTKeyCollection?
    private let es256: JWTKeyCollection?
    /// The identity provider's keys, when a JWKS is configured.
    package let jwks: JWKSKeys?
    private let issuer: String?
    private let audience: String?
    private let claims: ClaimMapping
    /// Consulted on every verification, so a revoked token is refused everywhere a token is checked.
    package let revocations: Revocations

    public struct InvalidKey: Error, CustomStringConvertible {
        public let description: String
    }

    /// Loads every key; a JWKS that cannot be loaded at start stops the start (with the reason).
    package init(settings: AuthSettings, revocations: Revocations = Revocations(), clock: any RelayClock = SystemRelayClock(),
                 logger: Logger = Logger(label: "framepipe")) async throws {
        self.revocations = revocations
        issuer = settings.issuer
        audience = settings.audience
        claims = settings.claims
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
        let source: JWKSKeys.Source? = settings.jwksURL.map { .url($0) } ?? settings.jwksFile.map { .file($0) }
        if let source {
            let keys = JWKSKeys(source: source, unknownKeyInterval: settings.jwksCooldown, clock: clock, logger: logger)
            do {
                try await keys.refresh()
            } catch {
                throw InvalidKey(description: "cannot load the JWKS from \(source): \(error)")
            }
            jwks = keys
        } else {
            jwks = nil
        }
    }

    /// The grant a token carries, or why it carries none.
    public func verify(_ token: String) async throws(AuthFailure) -> AccessGrant {
        let verified: TokenClaims
        do {
            verified = try await keys(for: token).verify(token, as: TokenClaims.self)
        } catch let failure as AuthFailure {
            throw failure
        } catch let error as JWTError {
            switch error.errorType {
            case .claimVerificationFailure where error.failedClaim is ExpirationClaim:
                throw AuthFailure(kind: .expired, reason: "token expired")
            case .claimVerificationFailure where error.failedClaim is NotBeforeClaim:
                throw AuthFailure(kind: .malformed, reason: "token is not valid yet (nbf)")
            case .signatureVerificationFailed:
                throw AuthFailure(kind: .badSignature, reason: "token signature is not valid")
            default:
                throw AuthFailure(kind: .malformed, reason: "token is not valid: \(error.reason ?? "\(error.errorType)")")
            }
        } catch {
            throw AuthFailure(kind: .malformed, reason: "token is not valid: \(error)")
        }
        let grant = try grant(from: verified)
        if revocations.isRevoked(grant) { throw AuthFailure(kind: .revoked, reason: "token revoked") }
        return grant
    }

    /// The keys a token may be checked with, by its `alg` and `kid`.
    private func keys(for token: String) async throws(AuthFailure) -> JWTKeyCollection {
        guard let header = Self.header(of: token), let alg = header["alg"]?.stringValue else {
            throw AuthFailure(kind: .malformed, reason: "token is not a JWT")
        }
        let kid = header["kid"]?.stringValue
        switch alg {
        case "HS256":
            guard let hs256 else { throw AuthFailure(kind: .unsupportedAlgorithm, reason: "HS256 tokens are not accepted here") }
            return hs256
        case "RS256", "ES256":
            // A provider's token names its key; framepipe's own ES256 tokens name none.
            if let kid, let jwks {
                guard let key = await jwks.key(kid) else {
                    throw AuthFailure(kind: .badSignature, reason: "token is signed with key \(kid.prefix(64)), which the identity provider's key set does not have")
                }
                guard key.type == (alg == "RS256" ? .rsa : .ecdsa) else {
                    throw AuthFailure(kind: .unsupportedAlgorithm, reason: "token algorithm \(alg) does not match key \(kid.prefix(64))")
                }
                return key.keys
            }
            guard alg == "ES256", let es256 else {
                throw AuthFailure(kind: .unsupportedAlgorithm,
                                  reason: jwks == nil ? "\(alg) tokens are not accepted here" : "\(alg) token names no key (kid)")
            }
            return es256
        default:
            throw AuthFailure(kind: .unsupportedAlgorithm, reason: "token algorithm \(alg) is not accepted (HS256, RS256 or ES256)")
        }
    }

    /// Checks the issuer and audience and reads who, what role and which streams.
    private func grant(from token: TokenClaims) throws(AuthFailure) -> AccessGrant {
        if let issuer, token.json["iss"]?.stringValue != issuer {
            throw AuthFailure(kind: .malformed, reason: "token issuer is not \(issuer)")
        }
        if let audience {
            let aud = token.strings(at: "aud") ?? []
            guard aud.contains(audience) else { throw AuthFailure(kind: .malformed, reason: "token audience does not include \(audience)") }
        }
        guard let subject = token.json["sub"]?.stringValue, !subject.isEmpty else {
            throw AuthFailure(kind: .malformed, reason: "token has no sub")
        }
        let roleValues = token.strings(at: claims.role) ?? []
        var roles = Set<TokenRole>()
        if roleValues.contains(claims.viewerRole) { roles.insert(.viewer) }
        if roleValues.contains(claims.streamerRole) { roles.insert(.streamer) }
        if roleValues.contains(claims.adminRole) { roles.insert(.admin) }
        guard !roles.isEmpty else {
            throw AuthFailure(kind: .wrongRole, reason: "token grants none of \(claims.viewerRole), \(claims.streamerRole), \(claims.adminRole) in \(claims.role)")
        }
        guard let streams = token.strings(at: claims.streams), !streams.isEmpty else {
            throw AuthFailure(kind: .malformed, reason: "token has no \(claims.streams) claim naming its streams")
        }
        guard streams.allSatisfy(StreamScope.isValidPattern) else {
            throw AuthFailure(kind: .malformed, reason: "token names an invalid stream pattern")
        }
        let jti = token.json["jti"]?.stringValue
        return AccessGrant(subject: subject, roles: roles, scope: StreamScope(streams), tokenID: jti ?? subject,
                           expires: token.date("exp") ?? .distantPast, jti: jti, issuedAt: token.date("iat"))
    }

    /// A compact JWT's header, read without trusting anything in it.
    static func header(of token: String) -> JSONValue? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let data = Base64URL.decode(parts[0]),
              let header = try? JSONParser.parse(String(decoding: data, as: UTF8.self)), case .object = header
        else { return nil }
        return header
    }

    /// The `alg` of a compact JWT's header.
    static func algorithm(of token: String) -> String? { header(of: token)?["alg"]?.stringValue }
}

/// base64url without padding, as JWTs use it.
enum Base64URL {
    static func decode(_ text: Substring) -> Data? {
        var s = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while s.count % 4 != 0 { s += "=" }
        return Data(base64Encoded: s)
    }
}
