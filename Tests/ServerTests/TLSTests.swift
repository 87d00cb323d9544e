import Foundation
@testable import FramepipeServer
import NIOSSL
@testable import Pipeline
import Testing
import TestFixtures

@Suite("TLS", .timeLimit(.minutes(1)))
struct TLSTests {
    @Test func wssCarriesTheSameContract() async throws {
        let (cert, key) = try await TestCertificate.make()
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

    /// Certificate rotation: a reload re-reads both files; new connections
    /// get the new certificate, and a broken file is refused while the old one keeps serving.
    @Test func aReloadServesTheRenewedCertificateToNewConnections() async throws {
        let (cert, key) = try await TestCertificate.make()
        let (renewedCert, renewedKey) = try await TestCertificate.make()
        func trusting(_ path: String) throws -> TLSConfiguration {
            var client = TLSConfiguration.makeClientConfiguration()
            client.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(path))
            return client
        }
        let old = try trusting(cert), renewed = try trusting(renewedCert)
        let renewedPEM = try String(contentsOfFile: renewedCert, encoding: .utf8), renewedKeyPEM = try String(contentsOfFile: renewedKey, encoding: .utf8)
        try await withRelay(.test { $0.tlsCertificatePath = cert; $0.tlsKeyPath = key }) { relay in
            let wss = "wss://localhost:\(relay.port)"
            let before = try await TestSocket.connect("\(wss)/ws/viewer", tls: old)
            await #expect(throws: (any Error).self) { try await TestSocket.connect("\(wss)/ws/viewer", tls: renewed) }

            // What certbot's deploy hook does: replace both files, then reload.
            try renewedPEM.write(toFile: cert, atomically: true, encoding: .utf8)
            try renewedKeyPEM.write(toFile: key, atomically: true, encoding: .utf8)
            var response = try await RawHTTP.post(port: relay.port, path: "/api/reload", tls: true)
            #expect(response.status == 200)
            #expect((try JSONParser.parse(response.text))["tls_reloaded"] == .bool(true))
            let after = try await TestSocket.connect("\(wss)/ws/viewer", tls: renewed)
            try await after.waitFor(type: "viewer_connected")
            await #expect(throws: (any Error).self) { try await TestSocket.connect("\(wss)/ws/viewer", tls: old) }
            // The connection made before the reload keeps its session.
            let streamer = try await TestSocket.connect("\(wss)/ws/stream/cam", tls: renewed)
            streamer.send(TestFrames.text(0))
            try await before.waitFor(type: "frame", stream: "cam")

            try "not a certificate".write(toFile: cert, atomically: true, encoding: .utf8)
            response = try await RawHTTP.post(port: relay.port, path: "/api/reload", tls: true)
            #expect(response.status == 422)
            let problem = (try JSONParser.parse(response.text))["problems"]?.arrayValue?.first
            #expect(problem?["path"] == .string("(tls)"))
            #expect(problem?["reason"]?.stringValue?.hasPrefix("cannot load TLS certificate \(cert)") == true)
            let still = try await TestSocket.connect("\(wss)/ws/viewer", tls: renewed)
            try await still.waitFor(type: "viewer_connected")
        }
    }

    @Test func unreadableCertificateIsAClearError() async throws {
        await #expect(throws: (any Error).self) {
            try await withRelay(.test { $0.tlsCertificatePath = "/nonexistent/cert.pem"; $0.tlsKeyPath = "/nonexistent/key.pem" }) { _ in }
        }
    }
}
