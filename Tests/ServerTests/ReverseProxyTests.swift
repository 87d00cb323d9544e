@testable import Access
import Foundation
@testable import FramepipeServer
import NIOCore
@testable import Pipeline
import Testing

/// Behind a reverse proxy: the client address comes from the trusted
/// proxy's forwarding headers, and only from a trusted proxy's.
@Suite("Behind a reverse proxy", .serialized, .timeLimit(.minutes(3)))
struct ReverseProxyTests {
    static let loopbackProxy = TrustedProxies([TrustedProxies.Range("127.0.0.1/32")!])

    /// Connected viewers by the client address the relay logged for them.
    static func viewersByClient(_ relay: RelayHandle) -> [String: Int] {
        relay.log.all.filter { $0.message == "viewer connected" }.reduce(into: [:]) { $0[$1.metadata["remote"] ?? "?", default: 0] += 1 }
    }

    @Test func twoHundredViewersFromSeveralClientsThroughNginxAreEachLimitedAsThemselves() async throws {
        let configuration = RelayConfiguration.test {
            $0.trustedProxies = Self.loopbackProxy
            $0.limits = .unlimited
            $0.limits.maxConnectionsPerAddress = 60
        }
        try await withRelay(configuration) { relay in
            let nginx = try await NginxProcess(upstreamPort: relay.port)
            defer { nginx.stop() }
            let clients = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
            var sockets: [RawWebSocket] = []
            for client in clients {
                for _ in 0..<50 { sockets.append(try await RawWebSocket.connect(port: nginx.port, path: "/ws/viewer", from: client)) }
            }
            try await relay.eventually("200 viewers", timeout: .seconds(20)) { try await relay.api("/healthz")["viewers"] == .number(200) }
            #expect(Self.viewersByClient(relay) == Dictionary(uniqueKeysWithValues: clients.map { ($0, 50) }))
            // Each real client has its own 60: ten more from one of them fit, the 61st does not.
            for _ in 0..<10 { sockets.append(try await RawWebSocket.connect(port: nginx.port, path: "/ws/viewer", from: "127.0.0.2")) }
            await #expect(throws: RawWebSocket.Refused.self) {
                try await RawWebSocket.connect(port: nginx.port, path: "/ws/viewer", from: "127.0.0.2")
            }
            #expect(relay.log.contains("WebSocket upgrade refused", ["remote": "127.0.0.2", "reason": "too many connections from 127.0.0.2"]))
            sockets.append(try await RawWebSocket.connect(port: nginx.port, path: "/ws/viewer", from: "127.0.0.3"))
            for socket in sockets { await socket.drop() }
        }
    }

    @Test func aClientCannotClaimAnotherAddressThroughTheProxyOrWithoutIt() async throws {
        let configuration = RelayConfiguration.test { $0.trustedProxies = Self.loopbackProxy }
        try await withRelay(configuration) { relay in
            let nginx = try await NginxProcess(upstreamPort: relay.port)
            defer { nginx.stop() }
            // Through nginx: the forged entry is left of the one nginx appends.
            let proxied = try await RawWebSocket.connect(port: nginx.port, path: "/ws/viewer", from: "127.0.0.7",
                                                         headers: ["X-Forwarded-For": "6.6.6.6"])
            // Straight to the relay from an address that is not a trusted proxy: the header is ignored.
            let direct = try await RawWebSocket.connect(port: relay.port, path: "/ws/viewer", from: "127.0.0.8",
                                                        headers: ["X-Forwarded-For": "9.9.9.9", "Forwarded": "for=9.9.9.9"])
            try await relay.eventually("both connected") { Self.viewersByClient(relay).values.reduce(0, +) == 2 }
            #expect(Self.viewersByClient(relay) == ["127.0.0.7": 1, "127.0.0.8": 1])
            await proxied.drop(); await direct.drop()
        }
    }

    /// nginx passes the upstream's Host; the browser's host reaches the origin check in X-Forwarded-Host.
    @Test func theOriginCheckUsesTheForwardedHostFromATrustedProxyOnly() async throws {
        let configuration = RelayConfiguration.test { $0.trustedProxies = Self.loopbackProxy }
        try await withRelay(configuration) { relay in
            let nginx = try await NginxProcess(upstreamPort: relay.port)
            defer { nginx.stop() }
            let page = "http://127.0.0.1:\(nginx.port)"
            let viaProxy = try await RawWebSocket.connect(port: nginx.port, path: "/ws/viewer", headers: ["Origin": page])
            await viaProxy.drop()
            let forged = try await RawHTTP.get(port: relay.port, path: "/ws/viewer", upgrade: true, headers: [
                "Origin": "https://evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
            ])
            #expect(forged.status == 403, "a direct client's X-Forwarded-Host is ignored")
        }
    }

    @Test(arguments: [
        // (peer, headers, expected client)
        ("127.0.0.1", ["x-forwarded-for": "10.1.1.1, 127.0.0.1"], "10.1.1.1"),
        ("127.0.0.1", ["x-forwarded-for": "6.6.6.6, 10.1.1.1"], "10.1.1.1"),
        ("127.0.0.1", ["forwarded": #"for=10.1.1.1;proto=https, for="[2001:db8::1]:4711""#], "2001:db8::1"),
        ("127.0.0.1", ["forwarded": "for=unknown"], "127.0.0.1"),
        ("127.0.0.1", [:], "127.0.0.1"),
        ("10.9.9.9", ["x-forwarded-for": "10.1.1.1"], "10.9.9.9"),
        ("127.0.0.1", ["x-forwarded-for": "127.0.0.1, 127.0.0.1"], "127.0.0.1"),
    ] as [(String, [String: String], String)])
    func theClientIsTheRightmostAddressThatIsNotATrustedProxy(peer: String, headers: [String: String], client: String) {
        #expect(ForwardedClient.resolve(peer: peer, header: { headers[$0] }, trusted: Self.loopbackProxy).address == client)
    }

    @Test func rangesMatchTheirAddressesOnly() {
        let ranges = TrustedProxies(["10.0.0.0/8", "192.168.1.7", "fd00::/8"].map { TrustedProxies.Range($0)! })
        #expect(ranges.trusts("10.200.3.4"))
        #expect(!ranges.trusts("11.0.0.1"))
        #expect(ranges.trusts("192.168.1.7") && !ranges.trusts("192.168.1.8"))
        #expect(ranges.trusts("fd12::1") && !ranges.trusts("fe80::1"))
        #expect(ranges.trusts("::ffff:10.0.0.1"), "an IPv4-mapped address is its IPv4 address")
        #expect(TrustedProxies.Range("10.0.0.0/33") == nil && TrustedProxies.Range("ward-3") == nil)
    }
}
