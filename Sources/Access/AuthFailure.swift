import HTTPTypes

/// Why a request was not let in, with the HTTP status it gets: 401 when
/// the token is missing or not valid, 403 when a valid token does not
/// cover what was asked.
public struct AuthFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case missing, malformed, expired, badSignature = "bad_signature", unsupportedAlgorithm = "unsupported_algorithm"
        case wrongRole = "wrong_role", outOfScope = "out_of_scope", revoked
        /// A refresh token that would widen what the socket may see, or change its role.
        case widens
    }

    public let kind: Kind
    public let reason: String

    public init(kind: Kind, reason: String) {
        self.kind = kind
        self.reason = reason
    }

    public var status: HTTPResponse.Status {
        switch kind {
        case .wrongRole, .outOfScope, .widens: .forbidden
        default: .unauthorized
        }
    }

    public var description: String { reason }
}
