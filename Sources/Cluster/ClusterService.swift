import Access
import RelayCore
import WireProtocol
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import Pipeline
import RESP
import ServiceLifecycle

/// Joins this node to the others through Redis (one server, or a Redis
/// Cluster: `ClusterBroker` says how): publishes the frames its
/// pipeline accepts, relays the frames of other nodes' streams its viewers
/// watch, shares the registry of live streams, and ends the streams of a
/// node that stopped heartbeating with `node_lost`.
///
/// It listens on the control channel always, and on a stream's frame
/// channel only while a viewer here watches it. Redis going away never touches local delivery: the
/// node logs once, keeps serving its own streams, reconnects with backoff,
/// then reads the registry again, re-announces its streams and resubscribes.
///
/// This file holds the link (joining, staying connected, leaving); the
/// other nodes' liveness, the resync and subscriptions, and what Redis
/// pushes are in `ClusterService+Liveness`, `+Resync` and `+Inbound`.
package final class ClusterService: Service, Sendable {
    package let settings: ClusterSettings
    /// Relayed frames run the relayed stages of the pipeline this node's file routes their stream to.
    let live: LiveConfiguration
    package let metrics: RelayMetrics
    /// Revocations published by `framepipe revoke --redis` land here, on every node.
    package let revocations: Revocations
    package let logger: Logger
    /// This node's relay state: the service feeds it what Redis says.
    let hub: ViewerHub
    /// The hub's link out; the service hands it the command connection.
    let publisher: ClusterPublisher
    let state = NIOLockedValueBox(LinkState())
    /// Per remote stream, a task running the relay stages (downscale, fan-out) for its frames.
    let relays: RemoteStreamRelays
    let tls: TLSConfiguration?
    /// How keys and channels are named on the kind of Redis `--redis` names.
    let keys: ClusterKeys
    /// This node's replay channel, named once: each message is compared with it.
    let replayChannel: String

    package enum BrokerState: String, Sendable {
        case connecting, connected, down
    }

    struct LinkState {
        var link: (any ClusterBroker)?
        var broker = BrokerState.connecting
        /// When the broker's state last changed: the wall clock for the API, the monotonic one for how long.
        var since = Date()
        var sinceInstant = ContinuousClock.now
        var lastError: String?
        /// The server the node talks to (through Sentinel, the master found last).
        var master: String?
        var subscribed: Set<String> = []
        var stopping = false
        /// Set when an outage outlasted the node timeout and other nodes' streams were ended here.
        var remoteEndedForOutage = false
        /// Until then, other nodes missing from Redis are not declared lost:
        /// after an outage they need a node timeout to reconnect and re-announce.
        var graceUntil = ContinuousClock.now
        var badMessagesLogged = 0
        /// Per other node's stream, the clock offset of its camera as its node measured it (`clock` events).
        var cameraClocks: [String: (node: String, offset: Int64)] = [:]
    }

    package init(settings: ClusterSettings, live: LiveConfiguration, hub: ViewerHub, publisher: ClusterPublisher,
                 metrics: RelayMetrics, revocations: Revocations = Revocations(), logger: Logger) throws {
        self.settings = settings
        self.hub = hub
        self.publisher = publisher
        self.revocations = revocations
        self.tls = try settings.tlsConfiguration()
        self.keys = settings.redis.usesCluster ? .onRedisCluster : .onOneRedis
        self.replayChannel = keys.replay(settings.nodeID)
        self.live = live
        self.metrics = metrics
        var logger = logger
        logger[metadataKey: "node"] = "\(settings.nodeID)"
        self.logger = logger
        let nodeLogger = logger
        relays = RemoteStreamRelays(logger: logger) { streamID, node, hub in
            var streamLogger = nodeLogger
            streamLogger[metadataKey: "stream_id"] = "\(streamID)"
            let context = StageContext(streamID: streamID, logger: streamLogger, sink: RemoteFrameSink(hub: hub, node: node))
            return ReloadFollowingRunner(streamID: streamID, live: live) { $0.makeRelayRunner(context: context, observer: metrics) }
        }
    }

    var me: String { settings.nodeID }

    /// For `/healthz`.
    package var status: (broker: BrokerState, since: Date, lastError: String?, subscriptions: Int, master: String?) {
        state.withLockedValue { ($0.broker, $0.since, $0.lastError, $0.subscribed.count, $0.master) }
    }

    // MARK: Running

    package func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.relays.run() }
            group.addTask { for await _ in self.publisher.interestChanges { self.reconcile() } }
            await withGracefulShutdownHandler {
                await connectLoop()
            } onGracefulShutdown: {
                self.state.withLockedValue { $0.stopping = true }
            }
            relays.finish()
            publisher.finish()
        }
    }

    /// A graceful shutdown, or the task cancelled (a service group stopping hard).
    var stopping: Bool { state.withLockedValue { $0.stopping } || Task.isCancelled }

    func connectLoop() async {
        var attempt = 0
        var outageLogged = false
        while !stopping {
            var wasConnected = false, joined = false
            do {
                let link = try await ClusterBrokers.connect(settings, tls: tls, logger: logger, onConfirmed: { [weak self] channels in
                    self?.listening(to: channels)
                }) { [weak self] channel, payload in
                    self?.handleMessage(payload, on: channel)
                }
                wasConnected = true
                let downFor = state.withLockedValue { s -> TimeInterval? in
                    let downFor = s.broker == .down ? (ContinuousClock.now - s.sinceInstant).seconds : nil
                    s.link = link
                    s.broker = .connected
                    s.since = Date()
                    s.sinceInstant = .now
                    s.lastError = nil
                    s.master = link.registryServer
                    s.subscribed = []
                    s.remoteEndedForOutage = false
                    s.graceUntil = .now + settings.nodeTimeout
                    return downFor
                }
                publisher.use(link)
                metrics.brokerUp(true)
                metrics.brokerReconnected()
                link.listen(to: keys.alwaysSubscribed(by: me))
                // Joined once Redis delivers what others announce: claims made
                // after "connected" reach this node.
                guard await link.listened.wait(for: keys.alwaysSubscribed(by: me), timeout: settings.nodeTimeout) else {
                    throw RedisConnectionError(reason: "redis did not confirm the control channels' subscriptions within the node timeout")
                }
                try await loadRevocations(link)
                // Streams are claimed before the first heartbeat, so a node that
                // sees this one alive also sees its streams (a restarted,
                // empty Redis included).
                let announced = try await resync(link)
                try await heartbeat(link)
                logger.notice(downFor == nil ? "joined the cluster through redis" : "redis is back; cluster delivery resumes", metadata: [
                    "redis": "\(settings.redis)", "local_streams_announced": "\(announced)",
                    "remote_streams": "\(hub.remoteStreamCount)",
                ].merging(downFor.map { ["down_seconds": "\(String(format: "%.1f", $0))"] } ?? [:]) { a, _ in a }
                 .merging(settings.redis.usesSentinel || settings.redis.usesCluster ? ["master": "\(link.registryServer)"] : [:]) { a, _ in a })
                // An outage ends when the node has joined again, not when a
                // connection opens: a Redis Cluster that is forming again
                // takes connections and fails the join several times first.
                joined = true
                attempt = 0
                outageLogged = false
                reconcile()
                try await stayConnected(link)
            } catch {
                state.withLockedValue { $0.lastError = "\(error)" }
                if !wasConnected { metrics.brokerConnectFailed() }
            }
            let link = state.withLockedValue { s -> (any ClusterBroker)? in
                defer { s.link = nil; s.subscribed = [] }
                publisher.use(nil)
                if s.broker != .down { s.broker = .down; s.since = Date(); s.sinceInstant = .now }
                return s.link
            }
            if stopping {
                await sayGoodbye(link)
                link?.close()
                break
            }
            link?.close()
            metrics.brokerUp(false)
            metrics.clusterSubscriptions(0)
            relays.stopAll()
            if !outageLogged {
                outageLogged = true
                let error = state.withLockedValue { $0.lastError } ?? "connection closed"
                logger.warning(joined ? "lost redis; local viewers keep their local streams, reconnecting" : "cannot reach redis; serving local streams only, retrying",
                               metadata: ["redis": "\(settings.redis)", "error": "\(error)"])
            }
            // Backoff with jitter, 100 ms doubling to 5 s, watching the outage's length meanwhile.
            let base = min(5.0, 0.1 * pow(2, Double(min(attempt, 10))))
            attempt += 1
            let deadline = ContinuousClock.now + .milliseconds(Int64(base * Double.random(in: 0.5...1.0) * 1000))
            repeat {
                endRemoteStreamsIfOutageTooLong()
                try? await Task.sleep(for: .milliseconds(50))
            } while ContinuousClock.now < deadline && !stopping
        }
    }

    /// Heartbeats and checks other nodes until a connection drops (Redis
    /// stopped, or closed a subscriber that fell behind) or the node stops.
    func stayConnected(_ link: any ClusterBroker) async throws {
        var next = ContinuousClock.now + settings.heartbeatInterval
        while !stopping {
            guard link.isActive else { throw RedisConnectionError(reason: "connection to \(link.registryServer) closed") }
            if ContinuousClock.now >= next {
                next = ContinuousClock.now + settings.heartbeatInterval
                try await heartbeat(link)
                try await endLostNodes(link)
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Removes the node's key so others need not wait for it to expire.
    func sayGoodbye(_ link: (any ClusterBroker)?) async {
        guard let link, link.isActive else { return }
        // Replies come in order, so once this one is back every END the
        // shutdown queued before it has been applied.
        _ = try? await link.run(RESPCommand("DEL", .string(keys.node(me))), timeout: .seconds(1))
        logger.info("left the cluster")
    }

    /// The link while Redis is reachable.
    var connectedLink: (any ClusterBroker)? {
        state.withLockedValue { $0.broker == .connected ? $0.link : nil }
    }
}
