import WireProtocol
import Foundation
import NIOSSL
import RESP

/// How a node joins a cluster: `framepipe serve --redis URL`. Absent, the
/// relay runs alone and needs nothing else.
public struct ClusterSettings: Sendable {
    public var redis: RedisURL
    /// This node's name in the registry, in logs and in `CLIENT LIST`.
    public var nodeID: String
    /// A node whose heartbeat is older than this is lost: its streams end
    /// everywhere with reason `node_lost`. Also how long a node without
    /// Redis keeps showing other nodes' streams.
    public var nodeTimeout: Duration
    /// PEM certificates that `rediss://` servers are verified against
    /// instead of the system's roots (a hospital's own CA).
    public var redisCAFile: String?

    public init(redis: RedisURL, nodeID: String = ClusterSettings.defaultNodeID(), nodeTimeout: Duration = .seconds(5), redisCAFile: String? = nil) {
        self.redis = redis
        self.nodeID = nodeID
        self.nodeTimeout = nodeTimeout
        self.redisCAFile = redisCAFile
    }

    public struct UnreadableCA: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "cannot use redis CA file \(path): \(reason)" }
    }

    /// The TLS settings for `rediss://`, read once at start so a bad CA file
    /// stops the node with the reason instead of failing every reconnect.
    package func tlsConfiguration() throws -> TLSConfiguration? {
        guard redis.useTLS else { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let redisCAFile {
            do {
                let certificates = try NIOSSLCertificate.fromPEMFile(redisCAFile)
                guard !certificates.isEmpty else { throw UnreadableCA(path: redisCAFile, reason: "no PEM certificate in it") }
                tls.trustRoots = .certificates(certificates)
            } catch let error as UnreadableCA {
                throw error
            } catch {
                throw UnreadableCA(path: redisCAFile, reason: "\(error)")
            }
        }
        return tls
    }

    /// Heartbeats go out three times per timeout, so one lost write does not lose a node.
    var heartbeatInterval: Duration { nodeTimeout / 3 }

    /// `<hostname>-<4 hex>`: unique per process, readable in logs.
    public static func defaultNodeID() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "node"
        let clean = String(host.unicodeScalars.filter { isValidNodeID(String($0)) }.map(Character.init).prefix(48))
        return (clean.isEmpty ? "node" : clean) + "-" + String(UInt16.random(in: 0...UInt16.max), radix: 16)
    }

    /// Same alphabet as stream ids, so it can sit in keys, channels and logs as is.
    public static func isValidNodeID(_ id: String) -> Bool { NodeID.isValid(id) }
}
