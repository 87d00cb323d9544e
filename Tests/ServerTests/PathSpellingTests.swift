import Foundation
@testable import FramepipeServer
import NIOCore
@testable import Pipeline
import Testing
@testable import WireProtocol

/// Fail-closed routing: with auth on and no token, no spelling of a
/// protected resource gets it. Each protected path is sent in every hostile
/// spelling below; each answer must be a refusal (400) or not found (404),
/// never 200 with data and never an upgrade. The absolute form
/// (`GET http://host/api/streams`) is legal HTTP/1.1 for the same resource,
/// so for plain requests it meets the token check (401).
@Suite("Path spellings", .timeLimit(.minutes(2)))
struct PathSpellingTests {
    static let authed = RelayConfiguration.test { $0.auth = TestTokens.settings }

    static let protectedPaths = [
        "/api/streams", "/api/viewers", "/api/pipelines", "/api/session", "/metrics", "/api/streams/P-1/snapshot.jpg",
    ]
    static let sockets = ["/ws/viewer", "/ws/stream/P-1"]

    /// The spellings a router or a string check may read differently from the canonical path.
    static func spellings(of path: String) -> [(name: String, path: String)] {
        let segments = path.split(separator: "/").map(String.init)
        let first = segments[0]
        let rest = segments.dropFirst().joined(separator: "/")
        let letter = first.first!
        let encodedLetter = String(format: "%%%02X", letter.asciiValue!) + first.dropFirst()
        return [
            ("double slash", "/" + path),
            ("triple slash", "//" + path),
            ("trailing slash", path + "/"),
            ("dot segment", "/" + first + "/./" + rest),
            ("dot-dot segment", "/x/.." + path),
            ("percent-encoded letter", "/" + encodedLetter + (rest.isEmpty ? "" : "/" + rest)),
            ("percent-encoded slash", "/" + first + (rest.isEmpty ? "%2F" : "%2F" + rest)),
            ("lower-case percent-encoded slash", "/" + first + (rest.isEmpty ? "%2f" : "%2f" + rest)),
            ("upper case", path.uppercased()),
            ("over-long", "/" + String(repeating: "a/", count: 600) + ".." + path),
            ("NUL", "/" + first + "%00" + (rest.isEmpty ? "" : "/" + rest)),
            ("raw NUL", "/" + first + "\u{0}/" + rest),
            ("backslash", "/" + first + "\\" + rest),
            ("absolute form", "http://127.0.0.1" + path),
        ]
    }

    @Test func everyHostileSpellingOfAProtectedResourceIsRefusedOrNotFound() async throws {
        try await withRelay(Self.authed) { relay in
            for path in Self.protectedPaths {
                #expect(try await RawHTTP.get(port: relay.port, path: path).status == 401, "\(path) with no token")
                for (name, spelled) in Self.spellings(of: path) {
                    let response = try await RawHTTP.get(port: relay.port, path: spelled)
                    let expected = name == "absolute form" ? [401] : [400, 404]
                    #expect(expected.contains(response.status), "\(name) \(spelled.prefix(80).debugDescription): \(response.status) \(response.text.prefix(200))")
                }
            }
        }
    }

    @Test func everyHostileSpellingOfASocketIsRefusedBeforeTheUpgrade() async throws {
        try await withRelay(Self.authed) { relay in
            for path in Self.sockets {
                #expect(try await RawHTTP.get(port: relay.port, path: path, upgrade: true).status == 401, "\(path) with no token")
                for (name, spelled) in Self.spellings(of: path) {
                    let response = try await RawHTTP.get(port: relay.port, path: spelled, upgrade: true)
                    #expect([400, 404].contains(response.status), "\(name) \(spelled.prefix(80).debugDescription): \(response.status) \(response.text.prefix(200))")
                }
            }
            #expect(relay.log.contains("WebSocket upgrade refused", ["status": "400"]))
        }
    }

    @Test func aRefusedPathSaysWhatIsWrongWithIt() async throws {
        try await withRelay(Self.authed) { relay in
            let double = try await RawHTTP.get(port: relay.port, path: "//api/streams")
            #expect(double.status == 400)
            #expect(double.errorCode == "bad_path")
            #expect(double.reason == "the path has an empty segment (// or a trailing /)")
            let socket = try await RawHTTP.get(port: relay.port, path: "//ws/viewer", upgrade: true)
            #expect(socket.reason == "the path has an empty segment (// or a trailing /)")
            let elsewhere = try await RawHTTP.get(port: relay.port, path: "/ws/elsewhere", upgrade: true)
            #expect(elsewhere.status == 404)
            #expect(elsewhere.reason == "no WebSocket endpoint at /ws/elsewhere; streamers connect to /ws/stream/{stream_id}, viewers to /ws/viewer")
        }
    }

    /// The gate counts every upgrade against its address, whatever the spelling.
    @Test func hostileSpellingsCountAgainstTheUpgradeRate() async throws {
        let spellings = ["//ws/viewer", "/ws/viewer/", "/ws/viewer"]
        let limited = RelayConfiguration.test {
            $0.auth = TestTokens.settings
            $0.limits.upgradesPerSecondPerAddress = 0.01  // a burst of one, not refilled during the test
        }
        try await withRelay(limited) { relay in
            var statuses: [Int] = []
            for path in spellings {
                statuses.append(try await RawHTTP.get(port: relay.port, path: path, upgrade: true).status)
            }
            // The bad spelling took the only token: what follows is over the rate.
            #expect(statuses == [400, 429, 429])
        }
    }

    @Test func anUpgradeAfterAPlainRequestOnTheSameConnectionIsNotLetThrough() async throws {
        try await withRelay(Self.authed) { relay in
            let request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                + "GET //ws/viewer HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            let raw = String(buffer: try await RawHTTP.exchange(port: relay.port, send: request, untilComplete: false))
            #expect(raw.hasPrefix("HTTP/1.1 200"))
            #expect(!raw.contains("101 Switching"))
        }
    }

    @Test func publicRoutesNeedNoToken() async throws {
        try await withRelay(Self.authed) { relay in
            for path in PublicRoutes.paths {
                let concrete = path.replacingOccurrences(of: "{name}", with: "style.css")
                let response = try await RawHTTP.get(port: relay.port, path: concrete)
                #expect(response.status == 200, "\(concrete)")
            }
        }
    }
}

/// The parser itself, as a plain call.
@Suite("Request path")
struct RequestPathTests {
    @Test(arguments: [
        ("/", [String]()), ("/api/streams", ["api", "streams"]), ("/ws/viewer?streams=a,b", ["ws", "viewer"]),
        ("/api/streams/P-1/snapshot.jpg", ["api", "streams", "P-1", "snapshot.jpg"]), ("/a//b?x=//", nil),
    ] as [(String, [String]?)])
    func parsesTheCanonicalSpellingOnly(target: String, segments: [String]?) {
        let parsed = try? RequestPath(parsing: target)
        #expect(parsed?.segments.map(String.init) == segments)
    }

    @Test func keepsTheQueryUnparsed() throws {
        #expect(try RequestPath(parsing: "/ws/viewer?streams=a,b&x=%2F").query == "streams=a,b&x=%2F")
        #expect(try RequestPath(parsing: "/ws/viewer").query == nil)
    }

    @Test(arguments: [
        ("", RequestPath.Problem.notOriginForm), ("*", .notOriginForm), ("api", .notOriginForm),
        ("//api", .emptySegment), ("/api/", .emptySegment), ("/api/./x", .dotSegment), ("/api/..", .dotSegment),
        ("/%61pi", .forbiddenByte(0x25, offset: 1)), ("/a b", .forbiddenByte(0x20, offset: 2)),
        ("/a\u{0}", .forbiddenByte(0, offset: 2)), ("/é", .forbiddenByte(0xC3, offset: 1)),
        ("/" + String(repeating: "a", count: 1024), .tooLong(1025)),
    ])
    func refusesWithTheReason(target: String, problem: RequestPath.Problem) {
        #expect(throws: problem) { try RequestPath(parsing: target) }
    }
}
