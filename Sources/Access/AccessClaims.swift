import Foundation
import Pipeline
import JWTKit

/// What a streamer may publish or a viewer may watch.
public enum TokenRole: String, Codable, Sendable {
    case streamer
    case viewer
    /// Operations on the relay itself (`POST /api/reload`); it watches and publishes nothing.
    case admin
}

/// The JWT payload framepipe issues (it accepts it, and providers' tokens,
/// through `TokenClaims`): who (`sub`), until when
/// (`exp`, required), which role, and which streams (patterns as in
/// `StreamScope`). `jti` names the token for per-token limits.
struct AccessClaims: JWTPayload {
    var sub: SubjectClaim
    var exp: ExpirationClaim
    var iat: IssuedAtClaim?
    var jti: IDClaim?
    var role: TokenRole
    var streams: [String]

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }
}

/// What a verified token grants, as the relay uses it.
public struct AccessGrant: Sendable, Equatable {
    public let subject: String
    /// What the token lets its holder do; an identity provider's token may grant both.
    public let roles: Set<TokenRole>
    public let scope: StreamScope
    /// The token's `jti`, or its subject when it has none: per-token limits count by it.
    public let tokenID: String
    public let expires: Date
    /// The token's own `jti`, if it has one (revocation by token uses it).
    public let jti: String?
    /// `iat`, if present: revoking a subject revokes the tokens issued up to then.
    public let issuedAt: Date?

    public init(subject: String, roles: Set<TokenRole>, scope: StreamScope, tokenID: String, expires: Date, jti: String? = nil,
                issuedAt: Date? = nil) {
        self.subject = subject
        self.roles = roles
        self.scope = scope
        self.tokenID = tokenID
        self.expires = expires
        self.jti = jti
        self.issuedAt = issuedAt
    }
}
