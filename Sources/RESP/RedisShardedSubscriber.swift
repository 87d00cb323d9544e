import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Subscriptions to sharded channels (`SSUBSCRIBE`) across a Redis Cluster:
/// each channel on the shard that owns its slot, one subscriber connection
/// per shard that owns a wanted channel, so a channel's messages never
/// cross the cluster bus and a shard sees only its own channels' traffic.
///
/// When the cluster moves a slot (a resharding or a failover), Redis ends
/// the subscriptions of its channels there (a `sunsubscribe` push that was
/// not asked for), refuses one with `MOVED`, or drops the connection; the
/// subscriber then reads the shards again and subscribes each channel
/// where it now lives. Messages published meanwhile are not replayed:
/// sharded pub/sub, like pub/sub, delivers only to those subscribed.
public final class RedisShardedSubscriber: Sendable {
    /// Where each wanted channel is subscribed now, by shard primary.
    public typealias Placement = [RedisURL.Endpoint: Set<String>]

    private let client: RedisClusterClient
    private let clientName: String
    private let onMessage: @Sendable (_ channel: String, _ payload: ByteBuffer) -> Void
    private let onPlacement: @Sendable (Placement) -> Void
    private let logger: Logger

    private struct State {
        var wanted: Set<String> = []
        /// What was asked of each shard (SSUBSCRIBE sent, not left since).
        var asked: Placement = [:]
        /// What each shard confirmed (its `ssubscribe` came, no `sunsubscribe` since).
        var placed: Placement = [:]
        var connections: [RedisURL.Endpoint: RedisConnection] = [:]
        /// Channels this side asked to leave: their `sunsubscribe` is expected.
        var leaving: Set<String> = []
        /// The cluster moved something: read the shards before placing again.
        var stale = false
        var resyncs = 0
        /// Placing failed this many times in a row (a shard unreachable, a failover not over).
        var failedAttempts = 0
        /// SSUBSCRIBEs refused with a redirection since the last one confirmed.
        var refusals = 0
    }

    private let state = NIOLockedValueBox(State())
    private let requests: AsyncStream<CheckedContinuation<Void, Never>?>.Continuation
    private let worker: Task<Void, Never>

    /// `onMessage` is called on the shard connection's event loop, in the
    /// order that shard sent the channel's messages; `onPlacement` after
    /// each change of where channels are subscribed.
    public init(client: RedisClusterClient, clientName: String, logger: Logger = Logger(label: "framepipe.redis"),
                onPlacement: @escaping @Sendable (Placement) -> Void = { _ in },
                onMessage: @escaping @Sendable (_ channel: String, _ payload: ByteBuffer) -> Void) {
        self.client = client
        self.clientName = clientName
        self.onMessage = onMessage
        self.onPlacement = onPlacement
        self.logger = logger
        let (stream, continuation) = AsyncStream.makeStream(of: CheckedContinuation<Void, Never>?.self)
        self.requests = continuation
        // One at a time, in order: placing is a sequence of awaits.
        let box = WeakBox()
        self.worker = Task {
            for await done in stream {
                await box.value?.place()
                done?.resume()
            }
        }
        box.value = self
    }

    private final class WeakBox: @unchecked Sendable {
        weak var value: RedisShardedSubscriber?
    }

    /// Subscribes to exactly `channels`; returns once each was asked of its
    /// shard (a shard unreachable is retried, with backoff). `placement`
    /// shows what the shards confirmed.
    public func set(_ channels: Set<String>) async {
        state.withLockedValue { $0.wanted = channels }
        await withCheckedContinuation { requests.yield($0) }
    }

    /// Subscribes to exactly `channels`, without waiting: for a caller that
    /// must not, where later calls win (each is placed in the order called).
    public func want(_ channels: Set<String>) {
        state.withLockedValue { $0.wanted = channels }
        requests.yield(nil)
    }

    /// Where each channel is subscribed now: confirmed by its shard.
    public var placement: Placement { state.withLockedValue { $0.placed } }

    /// How many times the shards were read again because the cluster moved a subscribed slot.
    public var resyncs: Int { state.withLockedValue { $0.resyncs } }

    private func place() async {
        if state.withLockedValue({ s in defer { s.stale = false }; return s.stale }) {
            state.withLockedValue { $0.resyncs += 1 }
            try? await client.refreshTopology()
        }
        let topology = client.topology
        let (wanted, asked) = state.withLockedValue { ($0.wanted, $0.asked) }
        var target: Placement = [:]
        for channel in wanted {
            guard let owner = topology.shard(forKey: channel)?.primary.endpoint else { continue }
            target[owner, default: []].insert(channel)
        }
        for endpoint in Set(asked.keys).union(target.keys) {
            let now = asked[endpoint] ?? [], next = target[endpoint] ?? []
            let leave = now.subtracting(next), join = next.subtracting(now)
            if !leave.isEmpty, let connection = state.withLockedValue({ $0.connections[endpoint] }) {
                state.withLockedValue { $0.leaving.formUnion(leave) }
                // One channel per command: channels of different slots in one SSUBSCRIBE are refused (CROSSSLOT).
                for channel in leave.sorted() { connection.sendSubscription(RESPCommand("SUNSUBSCRIBE", .string(channel))) }
            }
            var joining: RedisConnection?
            if !join.isEmpty {
                guard let connection = try? await self.connection(to: endpoint) else { continue }
                joining = connection
            }
            // Recorded as asked before it is asked: the shard's confirmation
            // can come back (on the connection's event loop) before this task
            // runs again, and a confirmation of a channel not asked is ignored.
            state.withLockedValue { s in
                if next.isEmpty { s.asked[endpoint] = nil } else { s.asked[endpoint] = next }
            }
            if let joining {
                for channel in join.sorted() { joining.sendSubscription(RESPCommand("SSUBSCRIBE", .string(channel))) }
            }
        }
        // A shard that holds none of our channels any more needs no connection.
        let idle = state.withLockedValue { s -> [RedisConnection] in
            let gone = s.connections.filter { s.asked[$0.key] == nil }
            for endpoint in gone.keys {
                s.connections[endpoint] = nil
                s.placed[endpoint] = nil
            }
            return Array(gone.values)
        }
        for connection in idle { connection.close() }
        let askedNow = state.withLockedValue { $0.asked }
        let missing = wanted.subtracting(askedNow.values.reduce(into: Set<String>()) { $0.formUnion($1) })
        if missing.isEmpty {
            state.withLockedValue { $0.failedAttempts = 0 }
        } else {
            // Some shard could not be reached (its primary lost, a failover not over): read the shards again, later.
            let attempt = state.withLockedValue { s -> Int in
                s.failedAttempts += 1
                s.stale = true
                return s.failedAttempts
            }
            resync(after: .milliseconds(min(2000, 100 << min(attempt - 1, 5))))
        }
        onPlacement(placement)
    }

    private func connection(to endpoint: RedisURL.Endpoint) async throws -> RedisConnection {
        if let open = state.withLockedValue({ $0.connections[endpoint] }), open.isActive { return open }
        let connection = try await RedisConnection.connect(to: client.seeds[0].at(endpoint), clientName: clientName, group: client.group,
                                                           tls: client.tls) { [weak self] push in
            self?.handle(push, from: endpoint)
        }
        connection.closeFuture.whenComplete { [weak self] _ in self?.lost(endpoint, connection) }
        state.withLockedValue { $0.connections[endpoint] = connection }
        return connection
    }

    /// A push from the shard at `endpoint`, on its event loop.
    private func handle(_ push: RESPValue, from endpoint: RedisURL.Endpoint) {
        if let redirection = RedisRedirection(push, from: endpoint) {
            // A SSUBSCRIBE refused by a shard that does not own the slot (it
            // moved, or the shard has not yet heard it is the owner): those
            // channels are not subscribed there, so they are asked again.
            let slot = switch redirection { case .moved(let slot, _), .ask(let slot, _): slot }
            let refusals = state.withLockedValue { s -> Int in
                s.asked[endpoint] = s.asked[endpoint]?.filter { RedisKeySlot.of($0) != slot }
                if s.asked[endpoint]?.isEmpty == true { s.asked[endpoint] = nil }
                s.refusals += 1
                return s.refusals
            }
            // Refused again and again (the cluster's nodes disagree for a moment): ask less often.
            resync(after: refusals <= 2 ? nil : .milliseconds(100 << min(refusals - 3, 4)))
            return
        }
        guard let parts = push.array, let kind = parts.first?.string, parts.count == 3, let channel = parts[1].string else { return }
        switch kind {
        case "smessage":
            if let payload = parts[2].bytes { onMessage(channel, payload) }
        case "ssubscribe":
            state.withLockedValue { s in
                if s.asked[endpoint]?.contains(channel) == true { s.placed[endpoint, default: []].insert(channel) }
                s.refusals = 0
            }
            onPlacement(placement)
        case "sunsubscribe":
            let wasAsked = state.withLockedValue { s -> Bool in
                s.placed[endpoint]?.remove(channel)
                if s.placed[endpoint]?.isEmpty == true { s.placed[endpoint] = nil }
                if s.leaving.remove(channel) != nil { return true }
                // Not asked for: the slot moved away from this shard.
                s.asked[endpoint]?.remove(channel)
                return false
            }
            onPlacement(placement)
            if !wasAsked { resync() }
        default:
            break
        }
    }

    private func lost(_ endpoint: RedisURL.Endpoint, _ connection: RedisConnection) {
        let channels = state.withLockedValue { s -> Int? in
            guard s.connections[endpoint] === connection else { return nil }
            s.connections[endpoint] = nil
            s.placed[endpoint] = nil
            return s.asked.removeValue(forKey: endpoint)?.count ?? 0
        }
        guard let channels else { return }
        // A shard closes a subscriber that fell behind (its pub/sub output
        // buffer limit), and a primary that dies takes its connections along.
        logger.warning("lost the subscriber connection to a redis shard; subscribing its channels again",
                       metadata: ["shard": "\(endpoint)", "channels": "\(channels)"])
        resync()
    }

    /// Reads the shards and places the channels again, now or `after` a while.
    private func resync(after delay: Duration? = nil) {
        state.withLockedValue { $0.stale = true }
        guard let delay else {
            requests.yield(nil)
            return
        }
        let requests = self.requests
        Task {
            try? await Task.sleep(for: delay)
            requests.yield(nil)
        }
    }

    public func close() {
        requests.finish()
        worker.cancel()
        let open = state.withLockedValue { s -> [RedisConnection] in
            defer { s.connections = [:]; s.asked = [:]; s.placed = [:] }
            return Array(s.connections.values)
        }
        for connection in open { connection.close() }
    }
}
