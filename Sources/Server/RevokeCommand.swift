import Access
import ArgumentParser
import Cluster
import Foundation
import Logging
import RESP

/// `framepipe revoke`: revokes one token (by its `jti`) or every token of a
/// subject issued until now. It appends the revocation to the relay's
/// revocation file (which the relay reloads within a second) and, with
/// `--redis`, publishes it to every node of a cluster, which close the open
/// sockets of the revoked tokens at once.
struct RevokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke a token (by jti) or a subject's tokens, on one relay or a whole cluster.",
        discussion: """
            Examples:
              framepipe revoke --file /var/lib/framepipe/revoked.jsonl --jti 3f1c…
              framepipe revoke --file revoked.jsonl \\
                  --redis redis://10.0.0.5:6379 --subject ward-3-station
            """)

    @Option(help: "The token's jti (framepipe token prints tokens with one).")
    var jti: String?
    @Option(help: "Revoke every token of this subject issued until now.")
    var subject: String?
    @Option(help: "The relay's --revocation-file to append to.")
    var file: String?
    @Option(help: "The cluster's Redis: every node hears of it at once, and nodes that join later read it there.")
    var redis: String?
    @Option(help: "PEM CA certificate(s) for a rediss:// server.")
    var redisCa: String?

    func run() async throws {
        let now = Date().millisecondsSince1970
        let revocation: Revocation
        switch (jti, subject) {
        case (let jti?, nil) where !jti.isEmpty: revocation = Revocation(target: .token(jti: jti), at: now)
        case (nil, let subject?) where !subject.isEmpty: revocation = Revocation(target: .subject(subject), at: now)
        default: throw ValidationError("give exactly one of --jti and --subject")
        }
        guard file != nil || redis != nil else { throw ValidationError("give --file (the relay's --revocation-file), --redis, or both") }
        if let file { try Self.append(revocation, to: file) }
        if let redis {
            var settings = ClusterSettings(redis: try RedisURL(redis), nodeID: "revoke")
            settings.redisCAFile = redisCa
            let link = try await ClusterBrokers.connect(settings, tls: try settings.tlsConfiguration(), logger: Logger(label: "framepipe.revoke")) { _, _ in }
            defer { link.close() }
            let keys = link.keys
            _ = try await link.run(RESPCommand("HSET", .string(keys.revoked), .string(revocation.redisField), .string(revocation.json)),
                                   timeout: .seconds(5))
            let nodes = try await link.run(RESPCommand(keys.publish, .string(keys.revocations), .string(revocation.json)), timeout: .seconds(5))
            ConsoleOutput.out("revoked \(revocation.description) in the cluster (\(nodes.integer ?? 0) node(s) listening)")
        }
        if let file { ConsoleOutput.out("revoked \(revocation.description) in \(file)") }
    }

    /// One line, appended and synced, so a relay reading the file never sees half of it as the whole.
    static func append(_ revocation: Revocation, to path: String) throws {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o640]) else {
                throw ValidationError("cannot create \(path)")
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw ValidationError("cannot open \(path) for writing") }
        defer { try? handle.close() }
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: Data((revocation.json + "\n").utf8))
            try handle.synchronize()
        } catch {
            throw ValidationError("cannot append to \(path): \(error.localizedDescription)")
        }
    }
}

extension Revocation {
    /// The field of the cluster's revocation hash: one per token or subject, the newest revocation wins.
    var redisField: String {
        switch target {
        case .token(let jti): "jti:" + jti
        case .subject(let subject): "sub:" + subject
        }
    }
}
