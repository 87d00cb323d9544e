/// The keys the relay verifies tokens with. With neither set, auth is off
/// (and the relay then listens on loopback only unless told `--insecure`).
public struct AuthSettings: Sendable {
    /// HS256: the shared secret, at least 32 bytes.
    public var hmacSecret: [UInt8]?
    /// ES256: the issuer's P-256 public key, PEM.
    public var ecdsaPublicKeyPEM: String?

    /// JSON lines of revoked tokens and subjects (`framepipe revoke` appends to it),
    /// reloaded whenever it changes.
    public var revocationFile: String?
    /// How long before a socket's token expires it is sent `token_expiring`.
    public var expiryWarning: Duration

    public init(hmacSecret: [UInt8]? = nil, ecdsaPublicKeyPEM: String? = nil, revocationFile: String? = nil,
                expiryWarning: Duration = .seconds(30)) {
        self.hmacSecret = hmacSecret
        self.ecdsaPublicKeyPEM = ecdsaPublicKeyPEM
        self.revocationFile = revocationFile
        self.expiryWarning = expiryWarning
    }

    public var isEnabled: Bool { hmacSecret != nil || ecdsaPublicKeyPEM != nil }

    public static let minimumSecretBytes = 32
}
