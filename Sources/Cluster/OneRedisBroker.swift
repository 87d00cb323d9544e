import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import RESP

/// The cluster's link through one Redis server (or the master Sentinel
/// names): two connections, commands and frames on one (all pipelined, so
/// a frame never waits for a reply) and subscriptions on the other.
final class OneRedisBroker: ClusterBroker {
    let keys = ClusterKeys.onOneRedis
    private let command: RedisConnection
    private let subscriber: RedisConnection
    private let subscribed = NIOLockedValueBox<Set<String>>([])
    let listened: ListenedChannels

    private init(command: RedisConnection, subscriber: RedisConnection, listened: ListenedChannels) {
        self.command = command
        self.subscriber = subscriber
        self.listened = listened
    }

    static func connect(_ settings: ClusterSettings, tls: TLSConfiguration?, listened: ListenedChannels,
                        onMessage: @escaping @Sendable (_ channel: String, _ payload: ByteBuffer) -> Void) async throws -> OneRedisBroker {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let command = try await RedisConnection.connect(
            to: settings.redis, clientName: "framepipe-\(settings.nodeID)-commands", group: loop,
            writeBufferWaterMark: ClusterBrokers.frameWaterMark, tls: tls)
        do {
            let subscriber = try await RedisConnection.connect(
                to: settings.redis, clientName: "framepipe-\(settings.nodeID)-subscriber", group: loop, tls: tls) { push in
                guard let parts = push.array, parts.count == 3, let channel = parts[1].string else { return }
                switch parts[0].string {
                case "message": if let payload = parts[2].bytes { onMessage(channel, payload) }
                case "subscribe": listened.confirmed(channel)
                case "unsubscribe": listened.left(channel)
                default: break
                }
            }
            return OneRedisBroker(command: command, subscriber: subscriber, listened: listened)
        } catch {
            command.close()
            throw error
        }
    }

    var registryServer: String { "\(command.url.host):\(command.url.port)" }

    var isActive: Bool { command.isActive && subscriber.isActive }

    func run(_ command: RESPCommand, timeout: Duration) async throws -> RESPValue {
        try await self.command.run(command, timeout: timeout)
    }

    func send(_ command: RESPCommand) -> EventLoopFuture<RESPValue> {
        self.command.send(command)
    }

    func announce(_ message: String, on channel: String) {
        command.sendIgnoringReply(RESPCommand(keys.publish, .string(channel), .string(message)))
    }

    /// One server carries every channel: there is no shard to choose.
    func shard(of channel: String) -> String? { nil }

    func publishFrame(_ envelope: ByteBuffer, on channel: String) -> FramePublishing {
        guard command.isActive else { return .down }
        guard command.isWritable else { return .backpressure }
        command.sendIgnoringReply(RESPCommand(keys.publish, .string(channel), .bytes(envelope)))
        return .sent
    }

    func listen(to channels: Set<String>) {
        let (added, removed) = subscribed.withLockedValue { now -> (Set<String>, Set<String>) in
            defer { now = channels }
            return (channels.subtracting(now), now.subtracting(channels))
        }
        if !added.isEmpty { subscriber.sendSubscription(RESPCommand(["SUBSCRIBE"] + added.sorted().map { .string($0) })) }
        if !removed.isEmpty { subscriber.sendSubscription(RESPCommand(["UNSUBSCRIBE"] + removed.sorted().map { .string($0) })) }
    }

    func close() {
        command.close()
        subscriber.close()
    }
}
