import Foundation
import Logging
import NIOCore
import Pipeline
import WireProtocol
import NIOConcurrencyHelpers

/// The relay's state (`RelayState`) under a lock, with what it decides
/// carried out: mailboxes filled, writers woken, frames encoded, streamers
/// closed, the cluster told, metrics counted and lines logged. It is the
/// `fan-out` stage's `FrameSink`, and owns each viewer's mailbox and writer.
///
/// A lock rather than an actor because `publish` is called from the frame
/// path, which must not suspend; every critical section is short and never
/// spans an `await`. Lock order is always hub, then a stream's
/// `StreamGate`, then mailbox: the mailbox actions an event returns are
/// applied before the hub's lock is released (see `RelayAction`), a
/// frame's offers under its stream's gate only, everything else after.
/// What a viewer sends (acks, pings) and what it is sent in reply take the
/// viewer's mailbox lock only, never the hub's.
///
/// The relay's shared state uses NIO's pthread-based `NIOLockedValueBox`,
/// not `Synchronization.Mutex`: on Linux, ThreadSanitizer cannot see
/// Mutex's futex and reports races inside correctly locked sections, which
/// would leave it blind to real ones.
package final class ViewerHub: FrameSink, Sendable {
    /// A connected viewer's delivery side: its mailbox and the writer that
    /// empties it onto the socket. What it wants and may see is its
    /// `ViewerRecord` in the state.
    package final class Viewer: ViewerHandle, @unchecked Sendable {
        package let id: String
        package let mailbox: ViewerMailbox
        let format: ViewerFormat
        /// `compat=patient_id`: every message naming a stream names it as `patient_id` too, for the old relay's dashboards.
        let namesPatient: Bool
        package let remoteAddress: String
        let eventLoop: any EventLoop
        let close: @Sendable () -> Void
        /// Made before the viewer is registered, so waking it needs no lock at all.
        package let writer: ViewerChannelHandler

        init(id: String, format: ViewerFormat, namesPatient: Bool, writer: ViewerChannelHandler, remoteAddress: String,
             eventLoop: any EventLoop, close: @escaping @Sendable () -> Void) {
            assert(writer.mailbox.controlMessages == !format.isMJPEG, "an MJPEG viewer's mailbox takes no control messages; any other's does")
            self.id = id
            self.mailbox = writer.mailbox
            self.writer = writer
            self.format = format
            self.namesPatient = namesPatient
            self.remoteAddress = remoteAddress
            self.eventLoop = eventLoop
            self.close = close
        }
    }

    struct Locked {
        var relay: RelayState
        var connections: [String: Viewer] = [:]
        /// A gate for each stream with a frame delivered since it (last)
        /// became deliverable, with the holder last given to it.
        var gates: [String: (gate: StreamGate, holder: FrameTicket.Holder)] = [:]
    }

    /// Which gates an event may have changed: a frame changes only its own
    /// stream's; any other event is checked against all of them.
    enum GateSync { case all, delivered }

    let locked: NIOLockedValueBox<Locked>
    package let logger: Logger
    package let metrics: RelayMetrics
    /// Other nodes, when the relay runs in a cluster; told of every local
    /// stream's life and frames, always outside the hub's lock.
    package let cluster: (any ClusterLink)?
    /// Told of each `RelayEvent` (the webhooks), always outside the hub's lock.
    package let events: (any RelayEventListener)?

    /// `makePolicy` makes each viewer's delivery policy (the config's `"delivery"`).
    /// What a stream's silence (idle warnings and closes) and viewers' pings are counted on.
    package let clock: any RelayClock

    package init(logger: Logger, metrics: RelayMetrics, cluster: (any ClusterLink)? = nil,
                 makePolicy: @escaping @Sendable () -> any DeliveryPolicy = { GoodputPolicy() },
                 events: (any RelayEventListener)? = nil, limits: CountLimits = CountLimits(), clock: any RelayClock = SystemRelayClock()) {
        self.clock = clock
        var relay = RelayState(makePolicy: makePolicy)
        relay.countLimits = limits
        // In a cluster, only once every node is known to count its viewers (`allNodesTellDemand`).
        relay.tellsDemand = cluster == nil
        self.locked = NIOLockedValueBox(Locked(relay: relay))
        self.logger = logger
        self.metrics = metrics
        self.cluster = cluster
        self.events = events
    }

    /// Runs one event on the state under the lock, applies its mailbox
    /// actions before unlocking and carries out the rest after.
    @discardableResult
    func transition<Result>(gates: GateSync = .all, _ event: (inout RelayState) -> (Result, [RelayAction])) -> Result {
        var drains = DrainRequests()
        let (result, later): (Result, [Deferred]) = locked.withLockedValue { locked in
            let (result, actions) = event(&locked.relay)
            return (result, Self.applyUnderLock(actions, &locked, &drains, gates: gates))
        }
        drains.submit()
        for work in later { perform(work) }
        return result
    }

    func transition(gates: GateSync = .all, _ event: (inout RelayState) -> [RelayAction]) {
        transition(gates: gates) { state -> (Void, [RelayAction]) in ((), event(&state)) }
    }

    /// Reads the state under the lock.
    func read<Result>(_ query: (RelayState) -> Result) -> Result {
        locked.withLockedValue { query($0.relay) }
    }

    /// An action left for after unlocking, with the viewers it names
    /// already looked up under the lock.
    private enum Deferred {
        case action(RelayAction)
        /// With the viewers registered then, for targets made before their handle was attached.
        case deliver(Frame, FanOut, FrameTicket, StreamGate, connections: [String: Viewer])
        case viewerLeft(Viewer, ViewerLeaveReason, remaining: Int)
    }

    private static func applyUnderLock(_ actions: [RelayAction], _ locked: inout Locked, _ drains: inout DrainRequests,
                                       gates: GateSync) -> [Deferred] {
        // Gates first: a stream_ended below must find its stream's gate already closed.
        if gates == .all {
            let changed = locked.gates.compactMap { id, entry in locked.relay.streamHolding(of: id)?.holder != entry.holder ? id : nil }
            for id in changed { syncGate(id, &locked) }
        }
        for case .deliver(_, _, let ticket) in actions { syncGate(ticket.stream, &locked, opening: true, replay: ticket.replayOf != nil) }
        var later: [Deferred] = []
        for action in actions {
            switch action {
            case .control(let id, let text):
                if let viewer = locked.connections[id], viewer.mailbox.enqueueControl(viewer.namesPatient ? WireMessage.namingPatient(text) : text) {
                    drains.add(viewer)
                }
            case .streamEnded(let id, let stream, let text):
                if let viewer = locked.connections[id],
                   viewer.mailbox.enqueueStreamEnded(stream, text: viewer.namesPatient ? WireMessage.namingPatient(text) : text) {
                    drains.add(viewer)
                }
            case .finish(let id):
                guard let viewer = locked.connections[id] else { break }
                viewer.mailbox.finish()
                drains.add(viewer)  // to flush what is queued, then close
            case .deliver(let frame, let fanOut, let ticket):
                guard let gate = locked.gates[ticket.stream]?.gate else { break }  // the stream is gone
                // No per-viewer work under the lock: the plan is shared, the registry a copy-on-write reference.
                later.append(.deliver(frame, fanOut, ticket, gate, connections: locked.connections))
            case .viewerLeft(let id, let reason, let remaining):
                guard let viewer = locked.connections.removeValue(forKey: id) else { break }
                later.append(.viewerLeft(viewer, reason, remaining: remaining))
            case .closeSession, .tellStreamer, .cluster, .metric, .log, .event:
                later.append(.action(action))
            }
        }
        return later
    }

    /// Gives a stream's gate the state's current answer; a gate whose
    /// stream is gone is closed and forgotten. `opening` makes one if missing.
    private static func syncGate(_ id: String, _ locked: inout Locked, opening: Bool = false, replay: Bool = false) {
        let state = locked.relay.streamHolding(of: id)
        if let (gate, holder) = locked.gates[id] {
            // A frame's own seq reaches the gate with its offers; a replay needs the state's now.
            guard state?.holder != holder || replay else { return }
            gate.update(state)
            locked.gates[id] = state.map { (gate, $0.holder) }
        } else if opening, let state {
            locked.gates[id] = (StreamGate(state), state.holder)
        }
    }

    private func perform(_ work: Deferred) {
        switch work {
        case .deliver(let frame, let fanOut, let ticket, let gate, let connections):
            deliver(frame, to: fanOut, ticket: ticket, gate: gate, connections: connections)
        case .viewerLeft(let viewer, let reason, let remaining):
            viewer.mailbox.finish()
            let stats = viewer.mailbox.statistics
            metrics.viewerDisconnected(viewer.id)
            // Logged before the drain that may close the socket, so the
            // line is there by the time the viewer sees its connection end.
            logger.log(level: reason.logLevel, "viewer removed", metadata: [
                "viewer_id": "\(viewer.id)", "reason": "\(reason.rawValue)", "delivered": "\(stats.delivered)",
                "replaced": "\(stats.replaced)", "viewers_remaining": "\(remaining)",
            ])
            viewer.eventLoop.execute { viewer.writer.drain() }
        case .action(.closeSession(let session, let reason)):
            session.close(reason)
        case .action(.tellStreamer(let session, let text)):
            session.send(text)
        case .action(.cluster(let notice)):
            guard let cluster else { break }
            switch notice {
            case .streamConnected(let id, let started): cluster.localStreamConnected(id, started: started)
            case .streamStarted(let id): cluster.localStreamStarted(id)
            case .streamEnded(let id, let reason): cluster.localStreamEnded(id, reason: reason)
            case .frameAccepted(let frame): cluster.localFrameAccepted(frame)
            case .interestChanged: cluster.interestChanged()
            case .streamHealth(let id, let event): cluster.localStreamHealth(id, event)
            case .demand(let id, let demand): cluster.demand(id, demand)
            }
        case .action(.metric(let event)):
            switch event {
            case .frameAccepted(let stream): metrics.frameAccepted(streamID: stream)
            case .streamEnded(let id): metrics.streamEnded(id)
            case .viewerConnected: metrics.viewerConnected()
            case .streamHealth(let kind, let state): metrics.streamHealth(kind: kind, state: state)
            }
        case .action(.event(let event)):
            events?.relayEvent(event)
        case .action(.log(let level, let message, let metadata)):
            logger.log(level: level, message, metadata: metadata)
        case .action:
            break  // mailbox actions are applied under the lock
        }
    }

    /// Encodes a frame once per group of viewers sent the same bytes,
    /// outside any lock, then offers it under its stream's gate if the
    /// stream is still served by the holder it came from: a `stream_ended`
    /// racing with it (timeout, replacement, shutdown) cannot be overtaken
    /// by it (see `StreamGate`). Per viewer only the offer is left.
    private func deliver(_ frame: Frame, to fanOut: FanOut, ticket: FrameTicket, gate: StreamGate, connections: [String: Viewer]) {
        var encoding = FrameEncoding(frame: frame, cached: ticket.replayOf != nil)
        var messages: [(group: FanOut.Group, rendition: RenditionKind, bytes: ByteBuffer, pacing: (Duration, ContinuousClock.Instant)?)] = []
        messages.reserveCapacity(fanOut.groups.count)
        for group in fanOut.groups {
            let rendition = encoding.available(group.rendition)
            if let bytes = encoding.message(format: group.format, rendition: rendition, namingPatient: group.namingPatient) {
                messages.append((group, rendition, bytes, group.maxFPS.map { (.seconds(1 / $0), frame.arrival) }))
            }
        }
        var drains = DrainRequests()
        let replaced: Int = gate.ifAdmitted(ticket, seq: frame.seq) {
            var replaced = 0
            for message in messages {
                for target in message.group.targets {
                    // Only the hub attaches handles, and only its `Viewer`s.
                    guard let viewer = target.handle.map({ unsafeDowncast($0, to: Viewer.self) }) ?? connections[target.viewer] else { continue }
                    let offer = viewer.mailbox.offerFrame(streamID: frame.streamID, rendition: message.rendition, bytes: message.bytes,
                                                         receivedAt: frame.receivedAt, seq: frame.seq, pacing: message.pacing)
                    if offer.needsDrain { drains.add(viewer) }
                    if offer.replacedOlder { replaced += 1 }
                }
            }
            return replaced
        } ?? 0
        if replaced > 0 { metrics.framesReplaced(replaced) }
        drains.submit()
    }

    // MARK: Streams

    package func makeSessionID() -> UInt64 {
        locked.withLockedValue { $0.relay.makeSessionID() }
    }

    /// Registers a streamer connection (see `RelayState.connectStream`); the
    /// replaced connection is returned so the caller closes it with
    /// `replaced`. Nil when the server is shutting down; throws when a new
    /// stream would pass `--max-streams` (checked in the same critical section).
    package func connectStream(_ id: String, session: StreamSessionHandle) throws(LimitRefusal)
        -> (replaced: StreamSessionHandle?, firstSeq: UInt64)? {
        let now = clock.instant
        let outcome: Result<RelayState.Connected?, LimitRefusal> = transition { state in
            if let refusal = state.refusal(forStream: id) { return (.failure(refusal), []) }
            let (connected, actions) = state.connectStream(id, session: session, now: now)
            return (.success(connected), actions)
        }
        return try outcome.get().map { ($0.replaced, $0.firstSeq) }
    }

    /// Ends a stream if `session` is still the one serving it, telling its viewers why.
    package func endStream(_ id: String, session: StreamSessionHandle, reason: StreamEndReason) {
        transition { $0.endStream(id, session: session, reason: reason) }
    }

    /// Records a message from the streamer (for the idle timers); for a
    /// frame, returns its seq, which keeps increasing across replacements.
    @discardableResult
    package func streamActivity(_ id: String, isFrame: Bool) -> UInt64 {
        let now = clock.instant
        return locked.withLockedValue { $0.relay.streamActivity(id, isFrame: isFrame, now: now) }
    }

    /// Records which pipeline a stream runs (at its first frame and after a reload moves it).
    package func streamRunsPipeline(_ id: String, _ name: String) {
        locked.withLockedValue { $0.relay.setPipeline(name, of: id) }
    }

    /// Gives every viewer, and every later one, the reloaded delivery policy.
    package func replaceDeliveryPolicy(_ make: @escaping @Sendable () -> any DeliveryPolicy) {
        locked.withLockedValue { $0.relay.replaceDeliveryPolicy(make) }
    }

    package func streamRejectedFrame(_ id: String, dropped: Bool) {
        locked.withLockedValue { $0.relay.streamRejectedFrame(id, dropped: dropped) }
    }

    // MARK: FrameSink

    package func publish(_ frame: Frame) {
        transition(gates: .delivered) { $0.frameAccepted(frame) }
    }

    package func streamEvent(_ event: StageEvent, streamID: String) {
        transition { $0.streamHealth(streamID, event) }
    }

    package func standingEvent(kind: String, streamID: String) -> StageEvent? {
        locked.withLockedValue { $0.relay.streams[streamID]?.health[kind] }
    }

    package func wantedRenditions(streamID: String, ladder: RenditionLadder) -> RenditionSet {
        locked.withLockedValue { $0.relay.wantedRenditions(streamID: streamID, ladder: ladder) }
    }

    // MARK: Viewers

    /// Adds a viewer; its first message, queued atomically with the
    /// registration, is `viewer_connected` with the live streams it watches.
    /// Nil while shutting down; throws when it would pass `--max-viewers` or
    /// the per-token limit (checked in the same critical section). `writer`
    /// holds the viewer's mailbox (made with its credits, if it has any)
    /// and may be added to the channel's pipeline before or after.
    package func addViewer(format: ViewerFormat, streams: Set<String>?, quality: QualityPreference, scope: StreamScope = .all,
                           tokenID: String? = nil, namesPatient: Bool = false, writer: ViewerChannelHandler, remoteAddress: String,
                           eventLoop: any EventLoop, close: @escaping @Sendable () -> Void) throws(LimitRefusal) -> Viewer? {
        let wants = ViewerRecord.Wants(format: format, streams: streams, quality: quality, scope: scope, tokenID: tokenID,
                                       remoteAddress: remoteAddress, namesPatient: namesPatient)
        var drains = DrainRequests()
        let (outcome, later): (Result<Viewer?, LimitRefusal>, [Deferred]) = locked.withLockedValue { locked in
            if let refusal = locked.relay.refusal(forViewerWithToken: tokenID) { return (.failure(refusal), []) }
            let (record, actions) = locked.relay.addViewer(wants)
            guard let record else { return (.success(nil), []) }
            let viewer = Viewer(id: record.id, format: format, namesPatient: namesPatient, writer: writer, remoteAddress: remoteAddress,
                                eventLoop: eventLoop, close: close)
            locked.connections[record.id] = viewer
            locked.relay.attach(viewer, to: record.id)
            return (.success(viewer), Self.applyUnderLock(actions, &locked, &drains, gates: .delivered))
        }
        drains.submit()
        for action in later { perform(action) }
        return try outcome.get()
    }

    /// Queues a control message for one viewer and wakes its writer. Takes
    /// only the viewer's mailbox lock: a reply is ordered only among the
    /// viewer's own messages, so it need not wait for fan-out.
    package func send(to viewer: Viewer, _ text: String) {
        var drains = DrainRequests()
        if viewer.mailbox.enqueueControl(text) { drains.add(viewer) }
        drains.submit()
    }

    /// A credit viewer drew a stream's frames up to `seq`; a frame that
    /// waited for the credit goes out now. False when it acknowledged
    /// nothing the relay wrote.
    @discardableResult
    package func ack(_ viewer: Viewer, streamID: String, seq: UInt64) -> Bool {
        var drains = DrainRequests()
        let result = viewer.mailbox.ack(streamID: streamID, seq: seq)
        if result.needsDrain { drains.add(viewer) }
        drains.submit()
        return result.acknowledged
    }

    /// Removes a viewer, logging why and how many remain.
    package func removeViewer(_ id: String, reason: ViewerLeaveReason) {
        transition { $0.removeViewer(id, reason: reason) }
    }

    /// A refreshed token covers less than the one before.
    package func narrowScope(_ viewerID: String, to scope: StreamScope) {
        locked.withLockedValue { $0.relay.narrowScope(viewerID, to: scope) }
    }

    /// Changes what a viewer watches; live streams it newly covers are
    /// announced with `stream_started`.
    package func subscribe(_ viewerID: String, to streams: Set<String>?) {
        transition { $0.subscribe(viewerID, to: streams) }
    }

    package func setQuality(_ viewerID: String, _ quality: QualityPreference) {
        let now = ContinuousClock.now
        transition { $0.setQuality(viewerID, quality, now: now).map(RelayState.logged) + $0.demandUpdates() }
    }

    /// What a viewer shows of a stream: a hidden tile gets no frames, one
    /// that becomes visible gets the latest at once, its size steers the rendition.
    package func setView(_ viewerID: String, stream: String, _ view: StreamView) {
        let now = ContinuousClock.now
        transition { $0.setView(viewerID, stream: stream, view, now: now) }
    }

    /// Drops a viewer the server gave up on (a stalled link, no pong): it is
    /// removed, its pending messages discarded and its connection reset, so
    /// nothing queued for it, in the mailbox or the kernel, is sent after.
    package func dropViewer(_ id: String, reason: ViewerLeaveReason) {
        guard let viewer = locked.withLockedValue({ $0.connections[id] }) else { return }
        viewer.mailbox.discardPending()
        removeViewer(id, reason: reason)
        metrics.viewerDropped()
        viewer.eventLoop.execute {
            // Dropped before its writer was added: the connection closes all the same.
            if !viewer.writer.abort() { viewer.close() }
        }
    }

    /// Sends `ping` to every viewer not already waiting to answer one.
    package func pingViewers(now: ContinuousClock.Instant) {
        transition { $0.pingViewers(now: now) }
    }

    package func pongReceived(_ viewerID: String) {
        locked.withLockedValue { $0.relay.pongReceived(viewerID) }
    }

    // MARK: Shutdown

    /// Tells every viewer that every live stream ended with reason
    /// `shutdown`, closes the streamers, and lets the viewers' writers drain
    /// and close. New connections are refused from here on.
    package func beginShutdown() {
        transition { $0.beginShutdown() }
    }

    /// True from `beginShutdown()` on (readiness says "draining").
    package var isShuttingDown: Bool { locked.withLockedValue { $0.relay.shuttingDown } }
}
