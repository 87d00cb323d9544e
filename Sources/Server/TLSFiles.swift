import HummingbirdTLS
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// The relay's certificate chain and key, read from their PEM files at
/// start and again at each reload.
///
/// It exists for certificate rotation without a restart: every TLS
/// handshake takes the credentials held here now (NIOSSL's context
/// callback), so a renewed certificate serves new connections at once and
/// open ones keep the session they negotiated.
final class TLSFiles: Sendable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    struct Credentials: Sendable {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
    }

    let certificatePath: String
    let keyPath: String
    private let current: NIOLockedValueBox<Credentials>

    init(certificate: String, key: String) throws {
        certificatePath = certificate
        keyPath = key
        current = NIOLockedValueBox(try Self.read(certificate: certificate, key: key))
    }

    /// Reads both files without using them: a reload checks everything before it changes anything.
    func read() throws -> Credentials { try Self.read(certificate: certificatePath, key: keyPath) }

    /// From now on every handshake uses `credentials`.
    func install(_ credentials: Credentials) { current.withLockedValue { $0 = credentials } }

    /// The server configuration: the credentials at start, overridden at
    /// each handshake by whatever is held then.
    func configuration() -> TLSConfiguration {
        let initial = current.withLockedValue { $0 }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: initial.chain.map { .certificate($0) }, privateKey: .privateKey(initial.key))
        let current = current
        configuration.sslContextCallback = { _, promise in
            let now = current.withLockedValue { $0 }
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = now.chain.map { .certificate($0) }
            override.privateKey = .privateKey(now.key)
            promise.succeed(override)
        }
        return configuration
    }

    private static func read(certificate: String, key: String) throws -> Credentials {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificate)
        } catch {
            throw Failure(description: "cannot load TLS certificate \(certificate): \(error)")
        }
        guard !chain.isEmpty else { throw Failure(description: "TLS certificate file \(certificate) holds no certificate") }
        let privateKey: NIOSSLPrivateKey
        do {
            privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
        } catch {
            throw Failure(description: "cannot load TLS key \(key): \(error)")
        }
        return Credentials(chain: chain, key: privateKey)
    }
}
