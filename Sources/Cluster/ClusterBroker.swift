import Logging
import NIOCore
import NIOSSL
import RESP

/// The node's link to Redis as the cluster service and the publisher use
/// it, so that they do not care whether that is one server (a Sentinel-found
/// master included: `OneRedisBroker`) or a Redis Cluster
/// (`RedisClusterBroker`). Made anew on each (re)connect; once `isActive`
/// is false the service drops it and connects again.
package protocol ClusterBroker: AnyObject, Sendable {
    /// How keys and channels are named on this kind of Redis.
    var keys: ClusterKeys { get }
    /// The server that holds the registry (for `/healthz` and logs).
    var registryServer: String { get }
    /// False once the link to the registry's server (or, on one Redis, the
    /// subscriber) broke.
    var isActive: Bool { get }

    /// A command on the registry's keys (all in one slot on a Redis Cluster);
    /// a refusal throws `RedisServerError`.
    func run(_ command: RESPCommand, timeout: Duration) async throws -> RESPValue
    /// The same without waiting for the reply; the future holds it (a refusal as `.error`).
    func send(_ command: RESPCommand) -> EventLoopFuture<RESPValue>
    /// A control message on one of the registry's channels; its reply is not needed.
    func announce(_ message: String, on channel: String)
    /// Publishes a frame's envelope on a frame or replay channel, unless the
    /// way to its server is full or down (a frame is skipped, never queued).
    func publishFrame(_ envelope: ByteBuffer, on channel: String) -> FramePublishing
    /// The server that carries `channel` as this node knows the cluster
    /// now (its shard's primary), nil on one Redis or while that is unknown.
    func shard(of channel: String) -> String?
    /// Listens on exactly these channels from now on.
    func listen(to channels: Set<String>)
    /// What Redis confirmed it listens on.
    var listened: ListenedChannels { get }
    func close()
}

/// What became of a frame handed to `ClusterBroker.publishFrame`.
package enum FramePublishing: Sendable, Equatable {
    case sent
    /// The connection's write buffer is past its high mark: Redis is behind.
    case backpressure
    /// No connection to the server that carries the channel (yet).
    case down
}

/// Which broker a `--redis` URL needs, connected.
package enum ClusterBrokers {
    /// Frames are skipped only when Redis falls 2 MB behind, not when one
    /// 150 KB frame is still in flight (NIO's default mark is 64 KB): a
    /// moment of Redis being busy must not cost every stream a frame.
    static let frameWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 512 << 10, high: 2 << 20)

    /// `onMessage` gets each message on a channel listened to, with its
    /// channel's name; `onConfirmed` the channels Redis newly confirmed.
    package static func connect(_ settings: ClusterSettings, tls: TLSConfiguration?, logger: Logger,
                                onConfirmed: @escaping @Sendable (Set<String>) -> Void = { _ in },
                                onMessage: @escaping @Sendable (_ channel: String, _ payload: ByteBuffer) -> Void) async throws -> any ClusterBroker {
        let listened = ListenedChannels(onConfirmed: onConfirmed)
        if settings.redis.usesCluster {
            return try await RedisClusterBroker.connect(settings, tls: tls, logger: logger, listened: listened, onMessage: onMessage)
        }
        return try await OneRedisBroker.connect(settings, tls: tls, listened: listened, onMessage: onMessage)
    }
}
