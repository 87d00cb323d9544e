import Foundation
import FramepipeServer
import NIOSSL
import Pipeline
import Testing

/// A self-signed certificate for localhost, made with the `openssl` command.
private func makeCertificate() throws -> (cert: String, key: String) {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("framepipe-tls-\(UUID())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let cert = dir.appendingPathComponent("cert.pem").path, key = dir.appendingPathComponent("key.pem").path
    let openssl = Process()
    openssl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    openssl.arguments = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    openssl.standardOutput = FileHandle.nullDevice
    openssl.standardError = FileHandle.nullDevice
    try openssl.run()
    openssl.waitUntilExit()
    guard openssl.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
    return (cert, key)
}

@Suite("TLS", .timeLimit(.minutes(1)))
struct TLSTests {
    @Test func wssCarriesTheSameContract() async throws {
        let (cert, key) = try makeCertificate()
        var client = TLSConfiguration.makeClientConfiguration()
        client.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(cert))
        try await withRelay(.test { $0.tlsCertificatePath = cert; $0.tlsKeyPath = key }) { relay in
            let wss = "wss://localhost:\(relay.port)"
            let viewer = try await TestSocket.connect("\(wss)/ws/viewer", tls: client)
            let streamer = try await TestSocket.connect("\(wss)/ws/stream/cam", tls: client)
            streamer.send(TestFrames.text(0))
            try await viewer.waitFor(type: "stream_started", stream: "cam")
            try await viewer.waitFor(type: "frame", stream: "cam")
            await #expect(throws: (any Error).self) { try await TestSocket.connect("\(relay.ws)/ws/viewer") }
            #expect(relay.log.contains("framepipe listening", ["viewers": "wss://127.0.0.1:\(relay.port)/ws/viewer"]))
        }
    }

    @Test func unreadableCertificateIsAClearError() async throws {
        await #expect(throws: (any Error).self) {
            try await withRelay(.test { $0.tlsCertificatePath = "/nonexistent/cert.pem"; $0.tlsKeyPath = "/nonexistent/key.pem" }) { _ in }
        }
    }
}
