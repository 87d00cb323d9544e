import Foundation
import Logging
import Pipeline
import WireProtocol

/// The relay's rules as a value: which streams are live and where each is
/// served, which viewers are connected and what each wants, and how frames
/// are numbered. Each event is a mutating method that returns the actions
/// it calls for (`RelayAction`); nothing here touches a socket, a lock, a
/// clock or a logger, so the rules are tested by feeding events and reading
/// actions. `ViewerHub` holds one under its lock and carries the actions out.
///
/// Modelled on swift-nio's typed HTTP upgrader: a state machine that says
/// what to do, and a handler that does it.
package struct RelayState {
    package internal(set) var streams: [String: LiveStream] = [:]
    package internal(set) var viewers: [String: ViewerRecord] = [:] {
        didSet { fanOutPlans.removeAll(keepingCapacity: true) }
    }
    /// Per stream, who gets its frames and in which rendition, worked out
    /// once after any viewer changes rather than by walking every viewer
    /// per frame (copying each record cost ~15% of the relay's CPU per
    /// delivered frame at 200 viewers).
    var fanOutPlans: [String: FanOutPlan] = [:]

    struct FanOutPlan {
        var fanOut: FanOut
        /// The rungs those viewers are sent: what `downscale` makes.
        var wanted: RenditionSet
    }
    package private(set) var shuttingDown = false
    /// Whether streamers are told what their viewers need (`demand`); in a
    /// cluster only while every node counts its viewers for other nodes'
    /// streams (until then a camera is told to send everything).
    package var tellsDemand = true
    /// When a stream's uplink counts as delayed.
    var uplinkRule = UplinkDelay.Rule()
    /// Streams, viewers and viewers per token at most (`CountLimits`).
    package var countLimits = CountLimits()
    private var nextViewerNumber = 1
    private var nextSessionID: UInt64 = 1
    /// Makes each new viewer's own instance of the configured delivery policy.
    private(set) var makePolicy: @Sendable () -> any DeliveryPolicy
    /// Each viewer's policy and its link as last measured, kept beside the
    /// records: they change at every review, and a change to `viewers`
    /// would throw away every fan-out plan twice a second.
    var policies: [String: ViewerPolicy] = [:]

    struct ViewerPolicy {
        var policy: any DeliveryPolicy
        var link = LinkFigures()
    }

    package init(makePolicy: @escaping @Sendable () -> any DeliveryPolicy = { GoodputPolicy() }) {
        self.makePolicy = makePolicy
    }

    /// A reload's delivery policy: every viewer gets a fresh instance, which
    /// starts from its view hints as a new viewer's does (its measured link
    /// is kept), and the next review applies it.
    package mutating func replaceDeliveryPolicy(_ make: @escaping @Sendable () -> any DeliveryPolicy) {
        makePolicy = make
        for id in policies.keys { policies[id]?.policy = make() }
    }

    /// Which pipeline a stream's frames run through here, for the API.
    package mutating func setPipeline(_ name: String, of streamID: String) {
        streams[streamID]?.pipeline = name
    }

    // MARK: Streams on this node

    package mutating func makeSessionID() -> UInt64 {
        defer { nextSessionID += 1 }
        return nextSessionID
    }

    package struct Connected {
        /// The connection this one replaces, to be closed with `replaced`.
        package let replaced: StreamSessionHandle?
        /// The seq of the stream's next frame: numbering continues across replacements and moves.
        package let firstSeq: UInt64
    }

    /// A streamer connected for `id`. A connection already serving it here,
    /// or another node serving it, is taken over: viewers see no
    /// `stream_ended` in between. Nil while shutting down.
    package mutating func connectStream(_ id: String, session: StreamSessionHandle, now: ContinuousClock.Instant)
        -> (Connected?, [RelayAction]) {
        guard !shuttingDown else { return (nil, []) }
        guard var stream = streams[id] else {
            streams[id] = LiveStream(session: session, now: now)
            return (Connected(replaced: nil, firstSeq: 0), [.cluster(.streamConnected(id, started: false))] + demandUpdates())
        }
        let replaced = stream.session
        let fromNode = stream.owner
        stream.takeOver(session: session, now: now)
        streams[id] = stream
        var actions: [RelayAction] = []
        if let fromNode {
            actions.append(.log(.info, "stream taken over from another node", ["stream_id": "\(id)", "previous_node": "\(fromNode)"]))
        }
        actions.append(.cluster(.streamConnected(id, started: stream.started)))
        if fromNode != nil { actions.append(.cluster(.interestChanged)) }
        // The new connection has been told nothing yet.
        streams[id]!.demandSent = nil
        return (Connected(replaced: replaced, firstSeq: stream.nextSeq), actions + demandUpdates())
    }

    /// The connection `session` ended. Ignored when it no longer serves the
    /// stream (it was replaced, or the stream moved to another node).
    package mutating func endStream(_ id: String, session: StreamSessionHandle, reason: StreamEndReason) -> [RelayAction] {
        guard let stream = streams[id], stream.session === session else { return [] }
        var actions = remove(id, reason: reason)
        if stream.started { actions.append(.event(.streamEnded(stream: id, reason: reason, frames: stream.frames))) }
        actions += [
            .cluster(.streamEnded(id, reason)),
            .metric(.streamEnded(id)),
            .log(.info, "stream ended", [
                "stream_id": "\(id)", "reason": "\(reason.rawValue)", "frames": "\(stream.frames)",
                "drops": "\(stream.drops)", "errors": "\(stream.errors)",
                "viewers_told": "\(stream.started ? watchers(of: id).count : 0)",
            ]),
        ]
        return actions
    }

    /// A message from the streamer (it resets the idle timers); for a frame,
    /// the seq it gets.
    package mutating func streamActivity(_ id: String, isFrame: Bool, now: ContinuousClock.Instant) -> UInt64 {
        guard var stream = streams[id] else { return 0 }
        stream.lastActivity = now
        stream.idleWarned = false
        let seq = stream.nextSeq
        if isFrame { stream.nextSeq += 1 }
        streams[id] = stream
        return seq
    }

    package mutating func streamRejectedFrame(_ id: String, dropped: Bool) {
        if dropped { streams[id]?.drops += 1 } else { streams[id]?.errors += 1 }
    }

    /// This node's pipeline accepted a frame: the stream starts with its
    /// first one, and the frame goes to every viewer watching, in the
    /// rendition each wants, and to the cluster.
    package mutating func frameAccepted(_ frame: Frame) -> [RelayAction] {
        let id = frame.streamID
        // In place: copying the stream's record out and back costs a retain per field per frame.
        guard let session = streams[id]?.session, !shuttingDown else { return [] }
        var actions: [RelayAction] = []
        let justStarted = streams[id]?.started == false
        if justStarted { actions += markStarted(id, at: Date(timeIntervalSince1970: Double(frame.receivedAt) / 1000)) }
        streams[id]!.frames += 1
        streams[id]!.lastSeq = frame.seq
        streams[id]!.latestFrame = frame
        actions += learnPictures(of: frame)
        if let capturedAt = frame.capturedAt,
           let change = streams[id]!.uplink.record(frame.receivedAt - capturedAt, at: frame.arrival, wall: frame.receivedAt, rule: uplinkRule) {
            actions += streamHealth(id, change)
        }
        actions.append(.metric(.frameAccepted(stream: id)))
        actions.append(.deliver(frame, to: plan(for: id).fanOut, ticket: FrameTicket(stream: id, holder: .session(session.id))))
        if justStarted { actions += [.cluster(.streamStarted(id)), .event(.streamStarted(stream: id))] + demandUpdates() }
        actions.append(.cluster(.frameAccepted(frame)))
        return actions
    }

    /// Who serves the stream now and its latest frame; nil once it is gone
    /// or the relay is shutting down (no frame of it is offered any more).
    /// Whether a frame accepted under a ticket may still be offered to
    /// viewers is its `admits(_:)`.
    package func streamHolding(of id: String) -> StreamHolding? {
        guard !shuttingDown, let stream = streams[id] else { return nil }
        return StreamHolding(holder: stream.holder, latestSeq: stream.latestFrame?.seq)
    }

    /// The rungs of this stream some viewer is sent, so only those are
    /// made; `ladder` is the one its `downscale` declares, which the state
    /// learns only from the frames after it (so the first frame is sized right too).
    /// A plan made for the known ladder is kept, so the frame's own
    /// fan-out right after reuses it instead of walking the viewers again.
    package mutating func wantedRenditions(streamID: String, ladder: RenditionLadder) -> RenditionSet {
        guard ladder == streams[streamID]?.pictures.ladder else { return makePlan(for: streamID, ladder: ladder).wanted }
        return plan(for: streamID).wanted
    }

    /// Who gets `id`'s frames and in which rendition, from the cache while no viewer changed.
    mutating func plan(for id: String) -> FanOutPlan {
        if let plan = fanOutPlans[id] { return plan }
        let plan = makePlan(for: id)
        fanOutPlans[id] = plan
        return plan
    }

    /// Viewers that watch `id` and show it; a hidden tile gets nothing.
    private func makePlan(for id: String, ladder known: RenditionLadder? = nil) -> FanOutPlan {
        let ladder = known ?? streams[id]?.pictures.ladder ?? .fullOnly
        var wanted = RenditionSet()
        var fanOut = FanOut()
        for viewer in viewers.values where viewer.watches(id) && viewer.shows(id) {
            let rung = viewer.rung(for: id, ladder: ladder)
            wanted.insert(rung)
            fanOut.add(FrameTarget(viewer: viewer.id, rendition: RenditionKind(rung: rung), maxFPS: viewer.choices[id]?.maxFPS,
                                   handle: viewer.handle),
                       format: viewer.format, namingPatient: viewer.namesPatient)
        }
        return FanOutPlan(fanOut: fanOut, wanted: wanted)
    }

    // MARK: Viewers

    /// Registers a viewer; its first message is `viewer_connected` with the
    /// live streams it may see, then each one's latest frame (cached), so no
    /// tile is blank until its camera's next frame. Nil while shutting down.
    package mutating func addViewer(_ wants: ViewerRecord.Wants) -> (ViewerRecord?, [RelayAction]) {
        guard !shuttingDown else { return (nil, []) }
        let viewer = ViewerRecord(number: nextViewerNumber, wants: wants)
        let id = viewer.id
        nextViewerNumber += 1
        policies[id] = ViewerPolicy(policy: makePolicy())
        viewers[id] = viewer
        let active = streams.filter { $0.value.started && viewer.watches($0.key) }.map(\.key).sorted()
        return (viewer, [
            .control(viewer: id, text: WireMessage.viewerConnected(viewerID: id, activeStreams: active)),
        ] + active.flatMap { healthMessages(of: $0, to: id) } + active.compactMap { replayLatest(of: $0, to: id) } + [
            .log(.info, "viewer connected", [
                "viewer_id": "\(id)", "format": "\(wants.format.rawValue)",
                "streams": "\(wants.streams.map { $0.sorted().joined(separator: ",") } ?? "all")",
                "remote": "\(wants.remoteAddress)", "viewers": "\(viewers.count)",
            ]),
            .metric(.viewerConnected),
            .cluster(.interestChanged),
        ] + demandUpdates())
    }

    /// The hub's handle for a viewer, carried in `FrameTarget`s.
    package mutating func attach(_ handle: any ViewerHandle, to id: String) {
        viewers[id]?.handle = handle
    }

    package mutating func removeViewer(_ id: String, reason: ViewerLeaveReason) -> [RelayAction] {
        guard viewers.removeValue(forKey: id) != nil else { return [] }
        policies[id] = nil
        return [.viewerLeft(viewer: id, reason: reason, remaining: viewers.count), .cluster(.interestChanged)]
            + (reason.isDrop ? [.event(.viewerDropped(viewer: id, reason: reason))] : []) + demandUpdates()
    }

    /// Changes which streams a viewer watches; live streams it newly covers
    /// are announced with `stream_started`, then sent their latest frame (cached).
    package mutating func subscribe(_ id: String, to list: Set<String>?) -> [RelayAction] {
        guard var viewer = viewers[id] else { return [] }
        let before = viewer.streams
        viewer.streams = list
        viewers[id] = viewer
        var actions: [RelayAction] = streams.keys.sorted().flatMap { stream -> [RelayAction] in
            guard streams[stream]!.started, viewer.watches(stream), !(before?.contains(stream) ?? true) else { return [] }
            return [.control(viewer: id, text: WireMessage.streamStarted(stream))] + healthMessages(of: stream, to: id)
                + [replayLatest(of: stream, to: id)].compactMap { $0 }
        }
        actions.append(.cluster(.interestChanged))
        return actions + demandUpdates()
    }

    /// A refreshed token covers less than the one before (never more: the
    /// caller checked); frames, events and lists follow the narrower scope.
    package mutating func narrowScope(_ id: String, to scope: StreamScope) {
        viewers[id]?.scope = scope
    }

    /// A new preference applies at once: the policy chooses again within it.
    package mutating func setQuality(_ id: String, _ quality: QualityPreference, now: ContinuousClock.Instant) -> [RenditionChange] {
        viewers[id]?.quality = quality
        return chooseRenditions(for: id, now: now, window: nil)
    }

    /// Pings every viewer not already waiting to answer one. The ping stays
    /// `{"type":"ping"}` exactly: clients in the field compare it as a string.
    /// An MJPEG viewer has no way to answer; its link's progress is its sign of life.
    package mutating func pingViewers(now: ContinuousClock.Instant) -> [RelayAction] {
        var actions: [RelayAction] = []
        for id in viewers.keys.sorted() where viewers[id]!.pingSentAt == nil && !viewers[id]!.format.isMJPEG {
            viewers[id]!.pingSentAt = now
            actions.append(.control(viewer: id, text: WireMessage.ping))
        }
        return actions
    }

    package mutating func pongReceived(_ id: String) {
        viewers[id]?.pingSentAt = nil
    }

    // MARK: Shutdown

    /// Every live stream ends with `shutdown` for its viewers, every viewer's
    /// mailbox is finished (it flushes, then closes), this node's streamers
    /// are closed; new streams and viewers are refused from here on.
    package mutating func beginShutdown() -> [RelayAction] {
        shuttingDown = true
        let ended = streams.sorted { $0.key < $1.key }
        var actions: [RelayAction] = []
        for (id, stream) in ended where stream.started {
            for viewer in watchers(of: id) {
                actions.append(.streamEnded(viewer: viewer, stream: id, text: WireMessage.streamEnded(id, reason: .shutdown)))
            }
        }
        streams.removeAll()
        actions += viewers.keys.sorted().map { .finish(viewer: $0) }
        actions.append(.log(.notice, "shutting down: ending streams and closing viewers", [
            "streams": "\(ended.count)", "viewers": "\(viewers.count)"]))
        for (id, stream) in ended {
            actions.append(.metric(.streamEnded(id)))
            guard let session = stream.session else { continue }
            actions.append(.closeSession(session, .shutdown))
            actions.append(.cluster(.streamEnded(id, .shutdown)))
            if stream.started { actions.append(.event(.streamEnded(stream: id, reason: .shutdown, frames: stream.frames))) }
        }
        return actions
    }

    // MARK: Shared by local and remote events

    /// Viewers watching `id`, in the order they connected, so actions come in a stable order.
    func watchers(of id: String) -> [String] { viewerIDs { $0.watches(id) } }

    /// The viewers `included`, in the order they connected (v-2 before
    /// v-10): the order the API lists them and the reviews visit them in.
    /// By number: sorting the ids as strings was an eighth of a
    /// `/api/viewers` call at 1000 viewers, and the reviews sort every
    /// viewer twice a second under the hub's lock.
    func viewerIDs(where included: (ViewerRecord) -> Bool = { _ in true }) -> [String] {
        inConnectionOrder(where: included) { $0.id }
    }

    /// What `take` reads of each viewer `included`, in the order they
    /// connected. Each record is read once, and the numbers are sorted, not
    /// the records: reading a record out of the dictionary copies it,
    /// retaining its every field.
    func inConnectionOrder<Row>(where included: (ViewerRecord) -> Bool = { _ in true },
                                _ take: (ViewerRecord) -> Row) -> [Row] {
        var listed: [(number: Int, row: Row)] = []
        listed.reserveCapacity(viewers.count)
        for record in viewers.values where included(record) {
            listed.append((record.number, take(record)))
        }
        listed.sort { $0.number < $1.number }
        return listed.map(\.row)
    }

    /// `markStarted` for a stream already in `streams`, changed in place.
    mutating func markStarted(_ id: String, at wall: Date) -> [RelayAction] {
        var actions: [RelayAction] = []
        if var stream = streams.removeValue(forKey: id) {
            actions = markStarted(&stream, id, at: wall)
            streams[id] = stream
        }
        return actions
    }

    /// `wall` is when this relay learned it started (its first frame's
    /// `received_at` here, or the moment another node's start was heard).
    mutating func markStarted(_ stream: inout LiveStream, _ id: String, at wall: Date) -> [RelayAction] {
        stream.started = true
        stream.startedAt = stream.startedAt ?? wall
        let health = stream.health
        var actions: [RelayAction] = watchers(of: id).flatMap { viewer in
            [.control(viewer: viewer, text: WireMessage.streamStarted(id))] + Self.healthMessages(health, of: id, to: viewer)
        }
        if stream.isLocal {
            actions.append(.log(.info, "stream started", ["stream_id": "\(id)", "viewers": "\(watchers(of: id).count)"]))
        }
        return actions
    }

    /// Forgets a stream; if it had started, its viewers hear `stream_ended`.
    mutating func remove(_ id: String, reason: StreamEndReason) -> [RelayAction] {
        // What viewers said they show of it ends with it: a stream of that id
        // started later is a new one, visible until they say otherwise.
        for viewer in viewers.keys where viewers[viewer]!.views[id] != nil || viewers[viewer]!.choices[id] != nil {
            viewers[viewer]!.views[id] = nil
            viewers[viewer]!.choices[id] = nil
        }
        guard let stream = streams.removeValue(forKey: id), stream.started else { return [] }
        return watchers(of: id).map { .streamEnded(viewer: $0, stream: id, text: WireMessage.streamEnded(id, reason: reason)) }
    }

    mutating func update(_ id: String, _ change: (inout LiveStream) -> Void) {
        guard var stream = streams[id] else { return }
        change(&stream)
        streams[id] = stream
    }

    mutating func insert(_ id: String, _ stream: LiveStream) { streams[id] = stream }
}
