import HummingbirdTLS
import NIOSSL

/// Loads a PEM certificate chain and private key into a server TLS
/// configuration, with errors that name the file.
enum TLSFiles {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func configuration(certificate: String, key: String) throws -> TLSConfiguration {
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
        return TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
    }
}
