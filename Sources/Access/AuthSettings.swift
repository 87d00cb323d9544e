/// The keys the relay verifies tokens with, and what it requires of them.
/// With no key source set, auth is off (and the relay then listens on
/// loopback only unless told `--insecure`).
public struct AuthSettings: Sendable {
    /// HS256: the shared secret, at least 32 bytes.
    public var hmacSecret: [UInt8]?
    /// ES256: the issuer's P-256 public key, PEM.
    public var ecdsaPublicKeyPEM: String?
    /// An identity provider's signing keys (RS256, ES256) as a JWKS file.
    public var jwksFile: String?
    /// The same, fetched from the provider (`https://…/certs`).
    public var jwksURL: String?
    /// How often the JWKS is fetched again.
    public var jwksRefresh: Duration
    /// After a fetch, how long a token naming an unknown key waits before it
    /// may cause another (jose's "cooldown"): a flood of made-up key ids
    /// costs the provider one request per cooldown at most.
    public var jwksCooldown: Duration
    /// `iss` every token must carry, when set.
    public var issuer: String?
    /// A value `aud` must contain, when set.
    public var audience: String?
    /// Where the role and the streams are in a token's claims.
    public var claims: ClaimMapping
    /// JSON lines of revoked tokens and subjects (`framepipe revoke` appends to it),
    /// reloaded whenever it changes.
    public var revocationFile: String?
    /// How long before a socket's token expires it is sent `token_expiring`.
    public var expiryWarning: Duration

    public init(hmacSecret: [UInt8]? = nil, ecdsaPublicKeyPEM: String? = nil, jwksFile: String? = nil, jwksURL: String? = nil,
                jwksRefresh: Duration = .seconds(600), jwksCooldown: Duration = .seconds(30), issuer: String? = nil, audience: String? = nil,
                claims: ClaimMapping = ClaimMapping(), revocationFile: String? = nil, expiryWarning: Duration = .seconds(30)) {
        self.hmacSecret = hmacSecret
        self.ecdsaPublicKeyPEM = ecdsaPublicKeyPEM
        self.jwksFile = jwksFile
        self.jwksURL = jwksURL
        self.jwksRefresh = jwksRefresh
        self.jwksCooldown = jwksCooldown
        self.issuer = issuer
        self.audience = audience
        self.claims = claims
        self.revocationFile = revocationFile
        self.expiryWarning = expiryWarning
    }

    public var isEnabled: Bool { hmacSecret != nil || ecdsaPublicKeyPEM != nil || jwksFile != nil || jwksURL != nil }

    public static let minimumSecretBytes = 32
}

/// Where a token says what it may do. framepipe's own tokens carry `role`
/// (`viewer` or `streamer`) and `streams`; an identity provider puts roles
/// in a claim of its own (`realm_access.roles`, `groups`, …) with values of
/// its own, and the streams in a custom claim. Paths are dot-separated; a
/// role claim may be a string or an array, a streams claim an array or a
/// space- or comma-separated string.
public struct ClaimMapping: Sendable, Equatable {
    public var role: String
    public var viewerRole: String
    public var streamerRole: String
    public var adminRole: String
    public var streams: String

    public init(role: String = "role", viewerRole: String = "viewer", streamerRole: String = "streamer", adminRole: String = "admin",
                streams: String = "streams") {
        self.role = role
        self.viewerRole = viewerRole
        self.streamerRole = streamerRole
        self.adminRole = adminRole
        self.streams = streams
    }
}
