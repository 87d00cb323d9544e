import Foundation
import RESP

/// A throwaway Redis Cluster made of Debian's `redis-server` in cluster mode:
/// `primaries` shards with one replica each, on free loopback ports (the
/// cluster bus too), joined by `redis-cli --cluster create`, as an operator
/// would build one. Stopped by `stop()`.
public final class RedisClusterGroup: Sendable {
    /// Every node, primaries first as `redis-cli` was given them (it makes
    /// the first `primaries` the primaries and the rest their replicas).
    public let nodes: [RedisServerProcess]

    public static let cli = "/usr/bin/redis-cli"

    /// `cluster-node-timeout`: short, so a killed primary's replica takes over within seconds.
    public static let nodeTimeout = Duration.seconds(1)

    /// With `tls`, every node serves only TLS, and talks TLS on the cluster
    /// bus and to its replica, with one certificate the nodes share.
    public let certificateFile: String?

    public init(primaries: Int = 3, tls: Bool = false) async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.cli) else {
            throw RedisServerProcess.Unavailable(reason: "\(Self.cli) is missing: install Debian's redis-tools (scripts/install-deps.sh test does)")
        }
        let certificate = tls ? try await TestCertificate.make() : nil
        certificateFile = certificate?.file
        var nodes: [RedisServerProcess] = []
        for _ in 0..<(primaries * 2) {
            let busPort = try RedisServerProcess.freePort()
            nodes.append(try await RedisServerProcess(tls: tls, certificate: certificate, arguments: (tls ? ["--tls-cluster", "yes", "--tls-replication", "yes"] : []) + [
                "--cluster-enabled", "yes", "--cluster-port", String(busPort), "--cluster-config-file", "nodes.conf",
                // A replica syncs at once (a replica that never synced cannot take over).
                "--cluster-node-timeout", String(Self.nodeTimeout.components.seconds * 1000), "--repl-diskless-sync-delay", "0",
            ]))
        }
        self.nodes = nodes
        let create = try await ChildProcess.run(URL(fileURLWithPath: Self.cli), (certificate.map { ["--tls", "--cacert", $0.file] } ?? [])
                                                 + ["--cluster", "create"] + nodes.map { "127.0.0.1:\($0.port)" }
                                                 + ["--cluster-replicas", "1", "--cluster-yes"])
        guard create.status == 0 else {
            await stop()
            throw RedisServerProcess.Unavailable(reason: "redis-cli --cluster create failed: \(create.out)\(create.err)")
        }
        do {
            try await waitUntilSettled()
        } catch {
            await stop()
            throw error
        }
    }

    /// Until every node says the cluster is ok and knows all its shards, each
    /// with a replica that has synced (gossip and the first sync take a
    /// moment after `create` returns, or after a killed node is started again).
    public func waitUntilSettled(timeout: Duration = .seconds(30)) async throws {
        let primaries = nodes.count / 2
        try await untilEveryLiveNode("the cluster settled", timeout: timeout) { info, shards in
            info.contains("cluster_state:ok") && shards.shards.count == primaries && shards.coversAllSlots
                && !shards.shards.contains { $0.replicas.isEmpty || $0.replicas.contains { $0.health != "online" } }
        }
    }

    /// Until every running node's `CLUSTER INFO` and `CLUSTER SHARDS` satisfy
    /// `agrees`. The nodes gossip and announce nothing when they agree, so
    /// each is asked every 50 ms: the fixture's one polling wait.
    private func untilEveryLiveNode(_ what: String, timeout: Duration,
                                    agrees: (_ info: String, _ shards: RedisClusterTopology) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            var agreed = true
            for node in nodes where node.isRunning {
                let info = try await node.command("CLUSTER", "INFO").string ?? ""
                guard let shards = try? RedisClusterTopology(shardsReply: try await node.command("CLUSTER", "SHARDS"), tls: certificateFile != nil),
                      agrees(info, shards) else {
                    agreed = false
                    break
                }
            }
            if agreed { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw RedisServerProcess.Unavailable(reason: "timed out after \(timeout) waiting until \(what)")
    }

    /// The topology as the first running node now sees it.
    public func topology() async throws -> RedisClusterTopology {
        let node = nodes.first { $0.isRunning } ?? nodes[0]
        return try RedisClusterTopology(shardsReply: try await node.command("CLUSTER", "SHARDS"), tls: certificateFile != nil)
    }

    /// The process listening on `endpoint`'s port.
    public func node(at endpoint: RedisURL.Endpoint) -> RedisServerProcess? {
        nodes.first { $0.port == endpoint.port }
    }

    /// Seeds for a client: every node's `host:port`.
    public var seeds: [RedisURL.Endpoint] { nodes.map { .init(host: "127.0.0.1", port: $0.port) } }

    /// `redis+cluster://` with every node as a seed, as `--redis` takes it.
    public var urlString: String { (certificateFile == nil ? "redis" : "rediss") + "+cluster://" + seeds.map(\.description).joined(separator: ",") }
    public var url: RedisURL { try! RedisURL(urlString) }

    /// The primary that owns `key`'s slot now.
    public func primary(forKey key: String) async throws -> RedisServerProcess {
        guard let shard = try await topology().shard(forKey: key) else {
            throw RedisServerProcess.Unavailable(reason: "no primary owns slot \(RedisKeySlot.of(key))")
        }
        return try require(shard.primary.endpoint)
    }

    /// A test's own command on `key` (or a channel), sent to the primary that owns its slot.
    public func command(onKey key: String, _ arguments: [String]) async throws -> RESPValue {
        try await primary(forKey: key).command(arguments)
    }

    /// Empties every primary (their replicas follow): a clean cluster for the next test.
    public func flushAll() async throws {
        for shard in try await topology().shards { _ = try await require(shard.primary.endpoint).command("FLUSHALL") }
    }

    /// Moves `slot` from one shard to another as `redis-cli --cluster reshard`
    /// does: the target imports, the source migrates, the keys move; with
    /// `finish`, every primary is then told the target owns the slot (until
    /// then the source answers ASK for keys it no longer has).
    public func migrate(slot: Int, from source: RedisClusterTopology.Node, to target: RedisClusterTopology.Node, finish: Bool) async throws {
        let sourceNode = try require(source.endpoint), targetNode = try require(target.endpoint)
        _ = try await targetNode.command("CLUSTER", "SETSLOT", String(slot), "IMPORTING", source.id)
        _ = try await sourceNode.command("CLUSTER", "SETSLOT", String(slot), "MIGRATING", target.id)
        let keys = try await sourceNode.command("CLUSTER", "GETKEYSINSLOT", String(slot), "1000").array?.compactMap(\.string) ?? []
        if !keys.isEmpty {
            let reply = try await sourceNode.command(
                ["MIGRATE", "127.0.0.1", String(target.endpoint.port), "", "0", "5000", "KEYS"] + keys)
            guard reply.string == "OK" else { throw RedisServerProcess.Unavailable(reason: "MIGRATE answered \(reply)") }
        }
        guard finish else { return }
        let primaries = try await topology().shards.map(\.primary.endpoint)
        for endpoint in primaries {
            _ = try await require(endpoint).command("CLUSTER", "SETSLOT", String(slot), "NODE", target.id)
        }
    }

    /// Until the node at `endpoint` is a primary that owns slots, as every live node sees it.
    public func waitUntilPrimary(_ endpoint: RedisURL.Endpoint, timeout: Duration) async throws {
        try await untilEveryLiveNode("\(endpoint) is a primary", timeout: timeout) { _, shards in
            shards.coversAllSlots && shards.shards.contains { $0.primary.endpoint == endpoint }
        }
    }

    private func require(_ endpoint: RedisURL.Endpoint) throws -> RedisServerProcess {
        guard let node = node(at: endpoint) else { throw RedisServerProcess.Unavailable(reason: "no node at \(endpoint)") }
        return node
    }

    public func stop() async {
        for node in nodes { await node.stop() }
    }

    /// Starts every stopped node again, on its port and with its saved
    /// cluster configuration (the data is gone: nothing is persisted), and
    /// waits until the cluster has formed again: a whole-cluster outage ends.
    public func start() async throws {
        for node in nodes where !node.isRunning { try await node.start() }
        try await waitUntilSettled()
    }
}
