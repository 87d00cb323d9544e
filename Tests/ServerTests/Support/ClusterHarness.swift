import Cluster
import FramepipeServer
import Pipeline
import RESP
import TestFixtures
import Testing

extension RelayConfiguration {
    /// A test relay that is node `id` of the cluster sharing `redis`.
    static func node(_ id: String, _ redis: RedisServerProcess, nodeTimeout: Duration = .seconds(1),
                     _ change: (inout RelayConfiguration) -> Void = { _ in }) -> RelayConfiguration {
        .test { c in
            c.cluster = ClusterSettings(redis: redis.url, nodeID: id, nodeTimeout: nodeTimeout)
            change(&c)
        }
    }
}

extension RelayHandle {
    /// Waits until this node has joined the cluster (its link to Redis is up).
    func waitForBroker(_ state: String = "connected", timeout: Duration = .seconds(10)) async throws {
        try await eventually("broker \(state)", timeout: timeout) {
            (try? await api("/healthz"))?["cluster"]?["state"] == .string(state)
        }
    }
}

/// Two nodes sharing `redis`, both joined before `body` runs. A 3 s node
/// timeout (heartbeat replies awaited 1 s): with 1 s, a Redis slow to answer
/// on a loaded machine read as an outage.
func withTwoNodes(_ redis: RedisServerProcess, _ body: @Sendable (RelayHandle, RelayHandle) async throws -> Void) async throws {
    try await withRelay(.node("node-a", redis, nodeTimeout: .seconds(3))) { a in
        try await withRelay(.node("node-b", redis, nodeTimeout: .seconds(3))) { b in
            try await a.waitForBroker()
            try await b.waitForBroker()
            try await body(a, b)
        }
    }
}

extension RedisServerProcess {
    /// How many clients are subscribed to a stream's frame channel.
    func frameSubscribers(_ stream: String) async throws -> Int64 {
        try await command("PUBSUB", "NUMSUB", "framepipe:frames:" + stream).array?[1].integer ?? -1
    }
}
