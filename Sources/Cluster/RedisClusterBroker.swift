import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import RESP

/// The cluster's link through a Redis Cluster (`redis+cluster://`).
///
/// The registry, its channel, the node keys and revocations share the hash
/// tag `{framepipe}`, so they live on one shard: commands and control
/// messages go on one connection to that shard's primary, and a `MOVED`
/// there (the slot moved, or its primary failed over) breaks the link, so
/// the service connects again and resyncs, as after any outage. Frames go
/// with `SPUBLISH` to the primary of their stream's slot, on a connection
/// per shard; a shard that is away (its primary killed, a failover not
/// over) costs only its own streams' frames until the cluster names a new
/// primary. Subscriptions are sharded (`RedisShardedSubscriber`) and follow
/// the slots by themselves.
final class RedisClusterBroker: ClusterBroker {
    let keys = ClusterKeys.onRedisCluster
    private let client: RedisClusterClient
    private let control: RedisConnection
    private let controlPrimary: RedisURL.Endpoint
    private let subscriber: RedisShardedSubscriber
    let listened: ListenedChannels

    private struct Repairs {
        /// Shards a connection is being opened to.
        var connecting: Set<RedisURL.Endpoint> = []
        var refreshing = false
        var lastRefresh: ContinuousClock.Instant?
    }

    private let repairs = NIOLockedValueBox(Repairs())

    /// At most one reading of the shards in this long, however many frames find a shard away.
    static let refreshSpacing = Duration.milliseconds(200)

    private init(client: RedisClusterClient, control: RedisConnection, controlPrimary: RedisURL.Endpoint, subscriber: RedisShardedSubscriber,
                 listened: ListenedChannels) {
        self.client = client
        self.control = control
        self.controlPrimary = controlPrimary
        self.subscriber = subscriber
        self.listened = listened
    }

    /// Connects, retrying for up to the node timeout (100 ms, doubling to
    /// a second) while the registry's shard has no reachable primary: during
    /// a failover the shards still name the dead primary, or leave its shard
    /// out, for a few seconds. The service's own backoff, which grows to 5 s,
    /// would otherwise add seconds to every failover of that shard.
    static func connect(_ settings: ClusterSettings, tls: TLSConfiguration?, logger: Logger, listened: ListenedChannels,
                        onMessage: @escaping @Sendable (_ channel: String, _ payload: ByteBuffer) -> Void) async throws -> RedisClusterBroker {
        let deadline = ContinuousClock.now + settings.nodeTimeout
        var delay = Duration.milliseconds(100)
        while true {
            do {
                return try await connectOnce(settings, tls: tls, logger: logger, listened: listened, onMessage: onMessage)
            } catch {
                guard ContinuousClock.now + delay < deadline else { throw error }
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(1))
            }
        }
    }

    private static func connectOnce(_ settings: ClusterSettings, tls: TLSConfiguration?, logger: Logger, listened: ListenedChannels,
                                    onMessage: @escaping @Sendable (_ channel: String, _ payload: ByteBuffer) -> Void) async throws -> RedisClusterBroker {
        let url = settings.redis
        let client = try await RedisClusterClient.connect(
            seeds: url.clusterSeeds.map { url.at($0) }, clientName: "framepipe-\(settings.nodeID)-commands", tls: tls,
            writeBufferWaterMark: ClusterBrokers.frameWaterMark)
        do {
            let primary = try client.primary(forKey: ClusterKeys.onRedisCluster.streams)
            let control = try await client.connection(to: primary)
            let subscriber = RedisShardedSubscriber(client: client, clientName: "framepipe-\(settings.nodeID)-subscriber", logger: logger,
                                                    onPlacement: { placement in
                listened.confirmedExactly(placement.values.reduce(into: Set<String>()) { $0.formUnion($1) })
            }, onMessage: onMessage)
            let broker = RedisClusterBroker(client: client, control: control, controlPrimary: primary, subscriber: subscriber, listened: listened)
            await broker.connectToEveryPrimary()
            return broker
        } catch {
            client.close()
            throw error
        }
    }

    var registryServer: String { controlPrimary.description }

    var isActive: Bool { control.isActive }

    func run(_ command: RESPCommand, timeout: Duration) async throws -> RESPValue {
        let reply = try await control.reply(to: command, timeout: timeout)
        if case .error(let message) = reply {
            brokenIfMoved(reply)
            throw RedisServerError(command: command.name, message: message)
        }
        return reply
    }

    func send(_ command: RESPCommand) -> EventLoopFuture<RESPValue> {
        let reply = control.send(command)
        reply.whenSuccess { [self] in brokenIfMoved($0) }
        return reply
    }

    func announce(_ message: String, on channel: String) {
        control.send(RESPCommand(keys.publish, .string(channel), .string(message))).whenSuccess { [self] in brokenIfMoved($0) }
    }

    /// The registry's slot is served elsewhere now: this link is over.
    private func brokenIfMoved(_ reply: RESPValue) {
        if case .moved? = RedisRedirection(reply, from: controlPrimary) { control.close() }
    }

    func shard(of channel: String) -> String? { (try? client.primary(forKey: channel))?.description }

    func publishFrame(_ envelope: ByteBuffer, on channel: String) -> FramePublishing {
        guard let shard = try? client.primary(forKey: channel) else {
            refreshSoon()
            return .down
        }
        guard let connection = client.openConnection(to: shard) else {
            connectSoon(shard)
            return .down
        }
        guard connection.isWritable else { return .backpressure }
        connection.send(RESPCommand(keys.publish, .string(channel), .bytes(envelope))).whenSuccess { [self] reply in
            // The slot moved (a resharding, a failover): read the shards, the next frame goes to its new owner.
            if RedisRedirection(reply, from: shard) != nil { refreshSoon() }
        }
        return .sent
    }

    /// Opens the connection to each shard's primary ahead of the first
    /// frame for it: a frame (or a replay, which is asked for once) finds
    /// its way open. One that cannot be reached is retried by `connectSoon`.
    private func connectToEveryPrimary() async {
        for shard in client.topology.shards { _ = try? await client.connection(to: shard.primary.endpoint) }
    }

    private func connectSoon(_ shard: RedisURL.Endpoint) {
        guard repairs.withLockedValue({ $0.connecting.insert(shard).inserted }) else { return }
        Task {
            do {
                _ = try await client.connection(to: shard)
            } catch {
                // Unreachable: likely a primary that died; the shards will name its successor.
                refreshSoon()
            }
            repairs.withLockedValue { _ = $0.connecting.remove(shard) }
        }
    }

    private func refreshSoon() {
        let now = ContinuousClock.now
        let due = repairs.withLockedValue { r -> Bool in
            guard !r.refreshing, r.lastRefresh.map({ now - $0 >= Self.refreshSpacing }) ?? true else { return false }
            r.refreshing = true
            r.lastRefresh = now
            return true
        }
        guard due else { return }
        Task {
            try? await client.refreshTopology()
            await connectToEveryPrimary()
            repairs.withLockedValue { $0.refreshing = false }
        }
    }

    func listen(to channels: Set<String>) {
        subscriber.want(channels)
    }

    func close() {
        subscriber.close()
        client.close()
        control.close()
    }
}
