import Foundation

/// A self-signed certificate for 127.0.0.1 and localhost, made with the
/// `openssl` command, for tests of TLS (the relay's, a Redis's, a Redis
/// Cluster's nodes, which share one).
public enum TestCertificate {
    public struct Failed: Error, CustomStringConvertible {
        public let description: String
    }

    /// Writes a new certificate and its key to a directory of their own;
    /// awaited without holding a thread (an RSA key takes a moment).
    public static func make() async throws -> (file: String, key: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("framepipe-tls-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let cert = dir.appendingPathComponent("cert.pem").path, key = dir.appendingPathComponent("key.pem").path
        let openssl = try await ChildProcess.run(URL(fileURLWithPath: "/usr/bin/openssl"), [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        guard openssl.status == 0 else { throw Failed(description: "openssl could not make a test certificate: \(openssl.err)") }
        return (cert, key)
    }
}
