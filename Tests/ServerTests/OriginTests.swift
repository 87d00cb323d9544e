@testable import Access
@testable import FramepipeServer
import Testing

@Suite("Origin checks", .timeLimit(.minutes(1)))
struct OriginTests {
    @Test func foreignBrowserOriginIsRefusedWith403() async throws {
        try await withRelay { relay in
            for path in ["/ws/viewer", "/ws/stream/cam"] {
                let refused = try await RawHTTP.get(port: relay.port, path: path, upgrade: true, headers: ["Origin": "https://evil.example"])
                #expect(refused.status == 403)
                #expect(refused.reason == "origin https://evil.example is not allowed")
            }
            #expect(relay.log.contains("WebSocket upgrade refused", ["reason": "origin https://evil.example is not allowed", "path": "/ws/viewer"]))
            let null = try await RawHTTP.get(port: relay.port, path: "/ws/viewer", upgrade: true, headers: ["Origin": "null"])
            #expect(null.status == 403)
        }
    }

    @Test func sameOriginAndClientsWithoutOriginAreLetIn() async throws {
        try await withRelay { relay in
            let same = try await RawHTTP.get(port: relay.port, path: "/ws/viewer", upgrade: true, headers: ["Origin": "http://127.0.0.1:\(relay.port)"])
            #expect(same.status == 101)
            let otherPort = try await RawHTTP.get(port: relay.port, path: "/ws/viewer", upgrade: true, headers: ["Origin": "http://127.0.0.1:1"])
            #expect(otherPort.status == 403)
            let device = try await RawHTTP.get(port: relay.port, path: "/ws/stream/cam", upgrade: true)
            #expect(device.status == 101)
            // WebSocket libraries (not browsers) may send their own ws:// "origin".
            let library = try await RawHTTP.get(port: relay.port, path: "/ws/stream/cam2", upgrade: true, headers: ["Origin": "ws://127.0.0.1"])
            #expect(library.status == 101)
            // Plain HTTP is not judged by origin.
            let api = try await RawHTTP.get(port: relay.port, path: "/healthz", headers: ["Origin": "https://evil.example"])
            #expect(api.status == 200)
        }
    }

    @Test func listedOriginsAreAllowed() async throws {
        try await withRelay(.test { $0.originPolicy = OriginPolicy(allowedOrigins: ["https://Ward.Example:8443"]) }) { relay in
            let listed = try await RawHTTP.get(port: relay.port, path: "/ws/viewer", upgrade: true, headers: ["Origin": "https://ward.example:8443"])
            #expect(listed.status == 101)
            let unlisted = try await RawHTTP.get(port: relay.port, path: "/ws/viewer", upgrade: true, headers: ["Origin": "https://ward.example"])
            #expect(unlisted.status == 403)
        }
    }
}
