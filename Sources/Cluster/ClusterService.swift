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
package final class ClusterService: Service, Sendable {
    package let settings: ClusterSettings
    /// Relayed frames run the relayed stages of the pipeline this node's file routes their stream to.
    package let live: LiveConfiguration
    package let metrics: RelayMetrics
    /// Revocations published by `framepipe revoke --redis` land here, on every node.
    package let revocations: Revocations
    package let logger: Logger
    /// This node's relay state: the service feeds it what Redis says.
    private let hub: ViewerHub
    /// The hub's link out; the service hands it the command connection.
    private let publisher: ClusterPublisher
    let state = NIOLockedValueBox(LinkState())
    /// Per remote stream, a task running the relay stages (downscale, fan-out) for its frames.
    private let relays: RemoteStreamRelays
    private let tls: TLSConfiguration?
    /// How keys and channels are named on the kind of Redis `--redis` names.
    package let keys: ClusterKeys
    /// This node's replay channel, named once: each message is compared with it.
    private let replayChannel: String

    package enum BrokerState: String, Sendable {
        case connecting, connected, down
    }

    package struct LinkState {
        package var link: (any ClusterBroker)?
        package var broker = BrokerState.connecting
        /// When the broker's state last changed: the wall clock for the API, the monotonic one for how long.
        package var since = Date()
        package var sinceInstant = ContinuousClock.now
        package var lastError: String?
        /// The server the node talks to (through Sentinel, the master found last).
        package var master: String?
        package var subscribed: Set<String> = []
        package var stopping = false
        /// Set when an outage outlasted the node timeout and other nodes' streams were ended here.
        package var remoteEndedForOutage = false
        /// Until then, other nodes missing from Redis are not declared lost:
        /// after an outage they need a node timeout to reconnect and re-announce.
        package var graceUntil = ContinuousClock.now
        package var badMessagesLogged = 0
        /// Per other node's stream, the clock offset of its camera as its node measured it (`clock` events).
        package var cameraClocks: [String: (node: String, offset: Int64)] = [:]
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

    private var me: String { settings.nodeID }

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
    private var stopping: Bool { state.withLockedValue { $0.stopping } || Task.isCancelled }

    private func connectLoop() async {
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
    private func stayConnected(_ link: any ClusterBroker) async throws {
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

    /// Renews this node's key. Its value says what the node understands:
    /// "2" counts its viewers in `demand` events, "1" (an older node) does
    /// not. While any live node says "1", cameras are told to send
    /// everything. Also repeats what this node's viewers need of other
    /// nodes' streams, so an owner that missed a message, or forgot it,
    /// hears it again.
    private func heartbeat(_ link: any ClusterBroker) async throws {
        _ = try await link.run(RESPCommand("SET", .string(keys.node(me)), .string(ClusterKeys.nodeVersion), "PX",
                                           .string(String(settings.nodeTimeout.milliseconds))),
                               timeout: settings.heartbeatInterval)
        let versions = try await link.run(RESPCommand("EVAL", .string(ClusterKeys.nodeVersionsScript), "1", .string(keys.streams),
                                                      .string(keys.node("*"))),
                                          timeout: settings.heartbeatInterval).array ?? []
        hub.allNodesTellDemand(versions.allSatisfy { $0.string == ClusterKeys.nodeVersion })
        for (id, demand) in hub.demandForOtherNodes() { publisher.demand(id, demand) }
    }

    /// Other nodes whose heartbeat key expired: their streams end everywhere
    /// with `node_lost` (the script publishes it; every node, this one too,
    /// hears it on the control channel).
    private func endLostNodes(_ link: any ClusterBroker) async throws {
        let owners = hub.remoteStreamsByOwner()
        guard !owners.isEmpty, ContinuousClock.now >= state.withLockedValue({ $0.graceUntil }) else { return }
        let alive = try await liveNodes(Set(owners.keys), link)
        for (owner, streams) in owners where !alive.contains(owner) {
            logger.warning("node lost: no heartbeat within the node timeout, ending its streams", metadata: [
                "lost_node": "\(owner)", "streams": "\(streams.sorted().joined(separator: ","))",
                "node_timeout_ms": "\(settings.nodeTimeout.milliseconds)"])
            for id in streams {
                let removed = try await endInRegistry(id, owner: owner, reason: .nodeLost, link)
                // Another node ended it first, and its message is on the way or was missed.
                if !removed { hub.remoteEnded(id, by: owner, reason: .nodeLost) }
            }
        }
    }

    private func liveNodes(_ candidates: Set<String>, _ link: any ClusterBroker) async throws -> Set<String> {
        let ordered = candidates.sorted()
        let futures = ordered.map { link.send(RESPCommand("EXISTS", .string(keys.node($0)))) }
        var alive: Set<String> = [me]
        for (node, future) in zip(ordered, futures) where try await future.get().integer == 1 { alive.insert(node) }
        return alive
    }

    /// Reads the registry and aligns both sides: this node's view of other
    /// nodes' streams, and the registry's view of this node's. Returns how
    /// many local streams were announced.
    private func resync(_ link: any ClusterBroker) async throws -> Int {
        let known = hub.remoteStreamsByOwner().keys.sorted()
        let snapshot = try await link.run(RESPCommand(["EVAL", .string(ClusterKeys.snapshotScript), "2", .string(keys.streams),
                                                       .string(keys.node(""))] + known.map { .string($0) }), timeout: .seconds(5)).array ?? []
        let raw = snapshot.first?.array ?? []
        var registry: [String: (owner: String, started: Bool)] = [:]
        for pair in stride(from: 0, to: raw.count - 1, by: 2) {
            guard let id = raw[pair].string, let value = raw[pair + 1].string, let entry = ClusterKeys.parseEntry(value) else { continue }
            registry[id] = entry
        }
        var alive: Set<String> = [me]
        for node in (snapshot.count > 1 ? snapshot[1].array ?? [] : []) { if let id = node.string { alive.insert(id) } }
        let mine = hub.resync(registry: registry, liveNodes: alive, me: me)
        for stream in mine { publisher.claim(stream.id, started: stream.started, on: link) }
        // Entries nobody serves any more: this node's from before the outage,
        // or a dead node's that no live node was there to clean up. A stream
        // this node still holds for its owner is left to the liveness check
        // after the grace period: its owner may have re-announced it and not
        // yet renewed its heartbeat (after an outage every node rejoins at
        // once), and ending it here ended a live stream as node_lost.
        let mineIDs = Set(mine.map(\.id))
        let held = hub.remoteStreamsByOwner()
        for (id, entry) in registry where entry.owner == me ? !mineIDs.contains(id)
            : !alive.contains(entry.owner) && held[entry.owner]?.contains(id) != true {
            _ = try await endInRegistry(id, owner: entry.owner, reason: entry.owner == me ? .closed : .nodeLost, link)
        }
        return mine.count
    }

    /// Removes the node's key so others need not wait for it to expire.
    private func sayGoodbye(_ link: (any ClusterBroker)?) async {
        guard let link, link.isActive else { return }
        // Replies come in order, so once this one is back every END the
        // shutdown queued before it has been applied.
        _ = try? await link.run(RESPCommand("DEL", .string(keys.node(me))), timeout: .seconds(1))
        logger.info("left the cluster")
    }

    private func endRemoteStreamsIfOutageTooLong() {
        let due = state.withLockedValue { s -> Bool in
            guard s.broker == .down, !s.remoteEndedForOutage, ContinuousClock.now - s.sinceInstant >= settings.nodeTimeout else { return false }
            s.remoteEndedForOutage = true
            return true
        }
        guard due else { return }
        let count = hub.endRemoteStreams(reason: .nodeLost)
        if count > 0 {
            logger.warning("redis away longer than the node timeout: other nodes' streams ended here", metadata: [
                "streams": "\(count)", "reason": "node_lost"])
        }
    }

    // MARK: Registry scripts

    private func endInRegistry(_ id: String, owner: String, reason: StreamEndReason, _ link: any ClusterBroker) async throws -> Bool {
        let event = ClusterEvent.ended(stream: id, node: owner, reason: reason)
        let reply = try await link.run(ClusterPublisher.evalCommand(keys.endScript, [id, owner, event.json], keys: keys), timeout: .seconds(5))
        return reply.integer == 1
    }

    /// The link while Redis is reachable.
    var connectedLink: (any ClusterBroker)? {
        state.withLockedValue { $0.broker == .connected ? $0.link : nil }
    }

    /// Subscribes to the frame channels of the remote streams watched here
    /// and unsubscribes from the rest: a set, so one subscription per stream
    /// however many viewers watch it.
    private func reconcile() {
        let wanted = hub.watchedRemoteStreams()
        let (link, added, removed) = state.withLockedValue { s -> ((any ClusterBroker)?, Set<String>, Set<String>) in
            guard s.broker == .connected, let link = s.link else { return (nil, [], []) }
            let added = wanted.subtracting(s.subscribed), removed = s.subscribed.subtracting(wanted)
            s.subscribed = wanted
            // Told under the lock, so two reconciliations reach the broker in the order they decided.
            if !added.isEmpty || !removed.isEmpty { link.listen(to: keys.alwaysSubscribed(by: me).union(wanted.map(keys.frames))) }
            return (link, added, removed)
        }
        guard link != nil else { return }
        if !removed.isEmpty {
            relays.stop(removed)
        }
        if !added.isEmpty || !removed.isEmpty {
            logger.debug("frame subscriptions changed", metadata: [
                "subscribed": "\(added.sorted().joined(separator: ","))", "unsubscribed": "\(removed.sorted().joined(separator: ","))"])
            metrics.clusterSubscriptions(wanted.count)
        }
    }

    // MARK: What Redis pushes

    /// Instant tiles: once Redis confirms this node listens on a stream's
    /// frames, its owner is asked for its latest frame at once, rather than
    /// waiting for the camera's next one. Asked only now: a frame published
    /// before the subscription took effect was not delivered here.
    private func listening(to channels: Set<String>) {
        let streams = channels.compactMap(keys.stream(ofFrameChannel:))
        if !streams.isEmpty { publisher.askForReplays(of: streams.sorted()) }
    }

    private func handleMessage(_ payload: ByteBuffer, on channel: String) {
        if channel == keys.controlChannel {
            handleControl(String(buffer: payload))
        } else if channel == keys.revocations {
            handleRevocation(String(buffer: payload))
        } else if keys.isFrameChannel(channel) {
            handleFrame(payload)
        } else if channel == replayChannel {
            handleFrame(payload, replay: true)
        }
    }

    /// Every revocation the cluster knows, read on each (re)connect: one
    /// published while this node was cut off is not missed.
    private func loadRevocations(_ link: any ClusterBroker) async throws {
        let raw = try await link.run(RESPCommand("HGETALL", .string(keys.revoked)), timeout: .seconds(5)).array ?? []
        var loaded: [Revocation] = []
        for pair in stride(from: 1, to: raw.count, by: 2) {
            guard let text = raw[pair].string, let revocation = try? Revocation(json: Substring(text)) else {
                badMessage("revocation", "unreadable entry in \(keys.revoked)")
                continue
            }
            loaded.append(revocation)
        }
        if revocations.addFromCluster(loaded) {
            logger.notice("cluster revocations loaded", metadata: ["entries": "\(loaded.count)"])
        }
    }

    private func handleRevocation(_ text: String) {
        do throws(Revocation.Invalid) {
            let revocation = try Revocation(json: Substring(text))
            if revocations.addFromCluster([revocation]) {
                logger.notice("revocation received from the cluster", metadata: ["revoked": "\(revocation.description)"])
            }
        } catch {
            badMessage("revocation", error.reason)
        }
    }

    private func handleControl(_ text: String) {
        let event: ClusterEvent
        do {
            event = try ClusterEvent(json: text)
        } catch {
            badMessage("control", "\(error)")
            return
        }
        switch event {
        case .claimed(let id, let node, let started):
            guard node != me else { return }
            hub.remoteClaimed(id, by: node, started: started)
            if started { askForLatestFrameIfListening(id) }
        case .started(let id, let node):
            guard node != me else { return }
            hub.remoteStarted(id, by: node)
            askForLatestFrameIfListening(id)
        case .ended(let id, let node, let reason):
            if node == me {
                // Declared lost while cut off, yet still serving it: say so again.
                if reason == .nodeLost, let local = hub.localStreams().first(where: { $0.id == id }), let link = connectedLink {
                    logger.warning("another node declared this node lost; announcing its stream again", metadata: ["stream_id": "\(id)"])
                    publisher.claim(id, started: local.started, on: link)
                }
                return
            }
            // The camera's clock went with its stream (a later stream of that id measures its own).
            state.withLockedValue { s in if s.cameraClocks[id]?.node == node { s.cameraClocks[id] = nil } }
            hub.remoteEnded(id, by: node, reason: reason)
        case .health(let id, let node, let event):
            guard node != me else { return }
            hub.remoteHealth(id, by: node, event)
        case .clock(let id, let node, let offset):
            guard node != me else { return }
            state.withLockedValue { $0.cameraClocks[id] = (node, offset) }
        case .demand(let id, let node, let watched, let width, let height, let fps):
            guard node != me else { return }
            hub.demandElsewhere(id, by: node, StreamDemand(watched: watched, width: width, height: height, fps: fps))
        case .replayWanted(let id, let node):
            guard node != me, let frame = hub.latestLocalFrame(of: id) else { return }
            publisher.replay(frame, to: node)
        }
    }

    /// On a Redis Cluster a stream's frames and its announcements travel
    /// through different shards, so its first frames can arrive before this
    /// node hears it started, and are not shown. Once it hears, it asks for
    /// the latest again (a frame it already has is not shown twice).
    private func askForLatestFrameIfListening(_ id: String) {
        guard let link = connectedLink, link.listened.contains(keys.frames(id)) else { return }
        publisher.askForReplays(of: [id])
    }

    private func handleFrame(_ payload: ByteBuffer, replay: Bool = false) {
        let envelope: ClusterFrameEnvelope
        do {
            envelope = try ClusterFrameEnvelope(decoding: payload)
        } catch {
            badMessage("frame", "\(error)")
            return
        }
        guard envelope.node != me, let seq = hub.admitRemoteFrame(envelope.stream, from: envelope.node, seq: envelope.seq, replay: replay)
        else { return }
        metrics.clusterFrameReceived()
        var frame = Frame(streamID: envelope.stream, seq: seq, timestamp: envelope.timestamp,
                          receivedAt: envelope.receivedAt ?? Date().millisecondsSince1970, payload: .binary(envelope.jpeg))
        // The serving node's measure of the camera's clock, if it told one.
        if let timestamp = envelope.timestamp, let clock = state.withLockedValue({ $0.cameraClocks[envelope.stream] }),
           clock.node == envelope.node {
            frame.capturedAt = min(frame.receivedAt, timestamp + clock.offset)
        }
        frame.isReplay = replay
        relays.submit(frame, from: envelope.node, to: hub)
    }

    /// Logged for the first few, counted always: a foreign writer on our
    /// channels should be visible without flooding the log.
    private func badMessage(_ kind: String, _ reason: String) {
        metrics.clusterBadMessage(kind)
        let log = state.withLockedValue { s -> Bool in
            s.badMessagesLogged += 1
            return s.badMessagesLogged <= 10
        }
        if log { logger.warning("ignored a malformed cluster message", metadata: ["kind": "\(kind)", "reason": "\(reason)"]) }
    }
}

/// The relay runner's sink for another node's frames: delivers through the
/// hub as that node's, and asks the hub which renditions viewers here are sent.
package struct RemoteFrameSink: FrameSink {
    package let hub: ViewerHub
    package let node: String

    package func publish(_ frame: Frame) { hub.deliverRemote(frame, from: node) }
    package func wantedRenditions(streamID: String, ladder: RenditionLadder) -> RenditionSet {
        hub.wantedRenditions(streamID: streamID, ladder: ladder)
    }
}
