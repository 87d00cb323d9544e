/// The keys the relay verifies tokens with. With neither set, auth is off
/// (and the relay then listens on loopback only unless told `--insecure`).
public struct AuthSettings: Sendable {
    /// HS256: the shared secret, at least 32 bytes.
    public var hmacSecret: [UInt8]?
    /// ES256: the issuer's P-256 public key, PEM.
    public var ecdsaPublicKeyPEM: String?

    public init(hmacSecret: [UInt8]? = nil, ecdsaPublicKeyPEM: String? = nil) {
        self.hmacSecret = hmacSecret
        self.ecdsaPublicKeyPEM = ecdsaPublicKeyPEM
    }

    public var isEnabled: Bool { hmacSecret != nil || ecdsaPublicKeyPEM != nil }

    public static let minimumSecretBytes = 32
}
