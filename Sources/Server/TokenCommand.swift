import Access
import RelayCore
import ArgumentParser
import Foundation

/// `framepipe token`: mints an access token for an operator to hand to a
/// camera or a dashboard, signed with the same key the relay verifies with.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Mint an access token (JWT) for streamers or viewers.",
        discussion: """
            Examples:
              framepipe token --secret-file secret.key --role streamer \\
                  --stream 'P-DHE-*' --ttl 8h
              framepipe token --private-key es256.pem --role viewer \\
                  --stream '*' --ttl 12h --subject ward-3-station
            """)

    @Option(help: "viewer (watch) or streamer (publish).")
    var role: TokenRole = .viewer
    @Option(help: "A stream id, a prefix ending in * (P-DHE-*), or * for all; repeatable.")
    var stream: [String] = []
    @Option(help: "How long the token is valid: 90s, 30m, 8h, 7d.")
    var ttl: String = "8h"
    @Option(help: "Who the token is for, as it appears in logs.")
    var subject: String = "operator"
    @Option(help: "HS256 secret file (the relay's --jwt-secret-file).")
    var secretFile: String?
    @Option(help: "ES256 private key, PEM (the relay verifies with its public key).")
    var privateKey: String?

    func run() async throws {
        guard !stream.isEmpty else { throw ValidationError("name at least one --stream (an id, a prefix ending in *, or *)") }
        if let bad = stream.first(where: { !StreamScope.isValidPattern($0) }) {
            throw ValidationError("--stream \(bad) is not a stream id, a prefix ending in *, or *")
        }
        guard let lifetime = Self.duration(ttl) else { throw ValidationError("--ttl \(ttl) must look like 90s, 30m, 8h or 7d") }
        let key: TokenMinter.Key
        switch (secretFile, privateKey) {
        case (let path?, nil): key = .hs256(try KeyFile.secret(at: path))
        case (nil, let path?): key = .es256(privateKeyPEM: try KeyFile.text(at: path))
        default: throw ValidationError("give exactly one of --secret-file and --private-key")
        }
        ConsoleOutput.out(try await TokenMinter(key: key).mint(subject: subject, role: role, streams: stream, ttl: lifetime))
    }

    static func duration(_ text: String) -> Duration? {
        guard let unit = text.last, let n = Int(text.dropLast()), n > 0 else { return nil }
        switch unit {
        case "s": return .seconds(n)
        case "m": return .seconds(n * 60)
        case "h": return .seconds(n * 3600)
        case "d": return .seconds(n * 86400)
        default: return nil
        }
    }
}

extension TokenRole: ExpressibleByArgument {}
