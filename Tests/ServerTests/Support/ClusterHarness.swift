@testable import Cluster
@testable import FramepipeServer
@testable import Pipeline
@testable import RESP
import TestFixtures
import Testing

/// The Redis a test cluster of relays shares, one server or a Redis
/// Cluster, with what the tests ask of it in the names that kind uses.
protocol SharedRedis: Sendable {
    var url: RedisURL { get }
    /// As `--redis` takes it.
    var urlString: String { get }
    var keys: ClusterKeys { get }
    /// How many clients are subscribed to a stream's frame channel.
    func frameSubscribers(_ stream: String) async throws -> Int64
    /// A test's own command on `key`, sent where the key lives.
    func command(onKey key: String, _ arguments: [String]) async throws -> RESPValue
    /// Stops every server of it (SHUTDOWN, then SIGKILL).
    func stop() async
    /// Starts what was stopped again, on the same ports, and waits until it serves.
    func start() async throws
}

extension SharedRedis {
    /// Runs a test that stops this Redis and starts it again; if the test
    /// fails while it is stopped, it is started again all the same (a suite's
    /// shared Redis Cluster serves the tests after this one).
    func startedAgain(after body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            try? await start()
            throw error
        }
    }

    /// Runs `body`, then stops the servers, whether it threw or not: for a
    /// test's own Redis (a `defer` cannot await the stop).
    func stopped(after body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            await stop()
            throw error
        }
        await stop()
    }

    /// How many streams the registry lists.
    func registrySize() async throws -> RESPValue {
        try await command(onKey: keys.streams, ["HLEN", keys.streams])
    }

    /// A stream's registry entry, "<owner>\t<started>".
    func registryEntry(_ stream: String) async throws -> String? {
        try await command(onKey: keys.streams, ["HGET", keys.streams, stream]).string
    }

    func nodeKeyExists(_ node: String) async throws -> Bool {
        try await command(onKey: keys.node(node), ["EXISTS", keys.node(node)]) == .integer(1)
    }

    /// The node holding a pulled camera's lease.
    func sourceHolder(_ stream: String) async throws -> String? {
        try await command(onKey: keys.source(stream), ["GET", keys.source(stream)]).string
    }
}

extension RedisServerProcess: SharedRedis {
    var keys: ClusterKeys { .onOneRedis }

    func frameSubscribers(_ stream: String) async throws -> Int64 {
        try await command("PUBSUB", "NUMSUB", keys.frames(stream)).array?[1].integer ?? -1
    }

    func command(onKey key: String, _ arguments: [String]) async throws -> RESPValue {
        try await command(arguments)
    }
}

extension RedisClusterGroup: SharedRedis {
    var keys: ClusterKeys { .onRedisCluster }

    /// Sharded subscriptions are known only to the shard that owns the channel.
    func frameSubscribers(_ stream: String) async throws -> Int64 {
        let channel = keys.frames(stream)
        return try await command(onKey: channel, ["PUBSUB", "SHARDNUMSUB", channel]).array?[1].integer ?? -1
    }
}

/// Which Redis a cluster test runs on: every test that is about the
/// relays, not about one Redis's failures, runs on both.
enum RedisKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case oneRedis = "one Redis"
    case redisCluster = "Redis Cluster"

    var testDescription: String { rawValue }

    /// A fresh Redis for one test: its own server, or the suite's Redis
    /// Cluster emptied (starting one takes seconds; see `SharedRedisCluster`).
    func make() async throws -> any SharedRedis {
        switch self {
        case .oneRedis:
            return try await RedisServerProcess()
        case .redisCluster:
            let cluster = try SharedRedisCluster.current
            try await cluster.flushAll()
            return cluster
        }
    }
}

/// One Redis Cluster (three primaries, a replica each) for a whole suite,
/// started before its first test and stopped after its last, handed to the
/// tests as a task-local value.
struct SharedRedisCluster: SuiteTrait, TestScoping {
    struct NoSharedCluster: Error, CustomStringConvertible {
        var description: String { "the suite has no .sharedRedisCluster trait" }
    }

    @TaskLocal private static var cluster: RedisClusterGroup?

    static var current: RedisClusterGroup {
        get throws {
            guard let cluster else { throw NoSharedCluster() }
            return cluster
        }
    }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let cluster = try await RedisClusterGroup()
        do {
            try await Self.$cluster.withValue(cluster) { try await function() }
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }
}

extension Trait where Self == SharedRedisCluster {
    static var sharedRedisCluster: Self { SharedRedisCluster() }
}

extension RelayConfiguration {
    /// A test relay that is node `id` of the cluster sharing `redis`.
    static func node(_ id: String, _ redis: any SharedRedis, nodeTimeout: Duration = .seconds(1),
                     _ change: (inout RelayConfiguration) -> Void = { _ in }) -> RelayConfiguration {
        .test { c in
            c.cluster = ClusterSettings(redis: redis.url, nodeID: id, nodeTimeout: nodeTimeout)
            change(&c)
        }
    }
}

extension RelayHandle {
    /// Waits until this node has joined the cluster (its link to Redis is up).
    func waitForBroker(_ state: String = "connected", timeout: Duration = TestDeadline.event) async throws {
        try await eventually("broker \(state)", timeout: timeout) {
            (try? await api("/healthz"))?["cluster"]?["state"] == .string(state)
        }
    }
}

/// Two nodes sharing `redis`, both joined before `body` runs. A 3 s node
/// timeout (heartbeat replies awaited 1 s): with 1 s, a Redis slow to answer
/// on a loaded machine read as an outage.
func withTwoNodes(_ redis: any SharedRedis, _ body: (RelayHandle, RelayHandle) async throws -> Void) async throws {
    try await withJoinedNodes(.node("node-a", redis, nodeTimeout: .seconds(3)), .node("node-b", redis, nodeTimeout: .seconds(3)), body)
}

/// Two relays configured as `a` and `b` (nodes of one cluster), both joined before `body` runs.
func withJoinedNodes(_ a: RelayConfiguration, _ b: RelayConfiguration,
                     _ body: (RelayHandle, RelayHandle) async throws -> Void) async throws {
    try await withRelay(a) { a in
        try await withRelay(b) { b in
            try await a.waitForBroker()
            try await b.waitForBroker()
            try await body(a, b)
        }
    }
}

extension TestSocket {
    /// Sends `count` text frames from seq `seq` on, each only after `viewer`
    /// (on the streamer's own node) got the one before: in step, so none is
    /// replaced for being sent faster than it is delivered.
    func sendInStep(_ count: Int, seenBy viewer: TestSocket, from seq: inout Int) async throws {
        for _ in 0..<count {
            send(TestFrames.text(seq))
            let sent = Double(seq)
            seq += 1
            try await viewer.waitFor("frame \(sent) on the streamer's node") { $0["type"] == .string("frame") && $0["seq"] == .number(sent) }
        }
    }
}
