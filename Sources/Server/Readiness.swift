import Cluster
import Foundation
import NIOConcurrencyHelpers
import Pipeline
import RelayCore

/// Whether this relay should be sent new connections, for `/readyz`.
///
/// It exists because liveness and readiness differ for an orchestrator:
/// a relay that is starting, draining after SIGTERM, or (in a cluster) cut
/// off from Redis still serves (`/healthz` stays 200, so it is not
/// restarted), but a load balancer should send new cameras and dashboards
/// elsewhere until it is ready again.
final class Readiness: Sendable {
    let hub: ViewerHub
    let cluster: ClusterService?
    /// Reported, never judged: a lost camera is the camera's fault, and a
    /// node taken out of a load balancer for it would only lose its viewers too.
    let sources: SourceService?
    /// With this set, a node cut off from Redis stays ready: its own streams still work.
    let readyWithoutRedis: Bool
    private let listening = NIOLockedValueBox(false)
    private let draining = NIOLockedValueBox(false)

    init(hub: ViewerHub, cluster: ClusterService?, sources: SourceService? = nil, readyWithoutRedis: Bool) {
        self.hub = hub
        self.cluster = cluster
        self.sources = sources
        self.readyWithoutRedis = readyWithoutRedis
    }

    func markListening() { listening.withLockedValue { $0 = true } }

    /// SIGTERM arrived: not ready from now on, even while streams still flow (`--drain-delay`).
    func beginDraining() { draining.withLockedValue { $0 = true } }

    /// Ready, or the state and why not.
    func check() -> (ready: Bool, state: String, reason: String?) {
        if draining.withLockedValue({ $0 }) || hub.isShuttingDown { return (false, "draining", "shutting down: streams and viewers are being closed") }
        guard listening.withLockedValue({ $0 }) else { return (false, "starting", "the listener is not up yet") }
        if let cluster {
            let status = cluster.status
            switch status.broker {
            case .connected: break
            case .connecting:
                return (false, "starting", "waiting for the first connection to Redis (\(cluster.settings.redis))")
            case .down where !readyWithoutRedis:
                let since = ISO8601DateFormatter().string(from: status.since)
                return (false, "redis_unreachable", "Redis (\(cluster.settings.redis)) unreachable since \(since)"
                    + (status.lastError.map { ": \($0)" } ?? "") + "; other nodes' streams cannot reach this node")
            case .down: break
            }
        }
        return (true, "ready", nil)
    }

    func json() -> (ready: Bool, body: JSONValue) {
        let (ready, state, reason) = check()
        var members: [(key: String, value: JSONValue)] = [("ready", .bool(ready)), ("state", .string(state))]
        if let reason { members.append(("reason", .string(reason))) }
        if let statuses = sources?.statuses, !statuses.isEmpty {
            // Counts only: the endpoint is public, and stream ids are not.
            let count = { (state: SourceStatus.State) in JSONValue.number(Double(statuses.values.filter { $0.state == state }.count)) }
            members.append(("sources", .object([
                ("listed", .number(Double(statuses.count))), ("pulling", count(.pulling)), ("elsewhere", count(.standby)),
                ("connecting", count(.connecting)), ("lost", count(.lost)),
            ])))
        }
        return (ready, .object(members))
    }
}
