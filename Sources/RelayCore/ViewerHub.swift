import Foundation
import Logging
import NIOCore
import Pipeline
import WireProtocol
import NIOConcurrencyHelpers

/// The state shared by every connection: which streams are live, which
/// viewers are connected, and what each viewer wants. It is the `fan-out`
/// stage's `FrameSink`.
///
/// A lock rather than an actor because `publish` is called from the
/// frame path, which must not suspend; every critical section is short and
/// never spans an `await`. Lock order is always hub, then mailbox.
///
/// The relay's shared state uses NIO's pthread-based `NIOLockedValueBox`,
/// not `Synchronization.Mutex`: on Linux, ThreadSanitizer cannot see
/// Mutex's futex and reports races inside correctly locked sections, which
/// would leave it blind to real ones.
package final class ViewerHub: FrameSink, Sendable {
    /// Where a stream is served: here, by a streamer's connection, or by
    /// another node of the cluster. One fact, so a stream can never be both
    /// or neither.
    package enum StreamLocation {
        case local(StreamSessionHandle)
        case remote(node: String)
    }

    /// A stream known to the hub: connected, and `started` once its first
    /// valid frame arrived (only then do viewers hear of it). In a cluster,
    /// a stream served by another node is here too, so viewers see every
    /// stream the same way.
    package struct LiveStream {
        package var location: StreamLocation
        /// The streamer's connection; nil for another node's stream.
        package var session: StreamSessionHandle? { if case .local(let session) = location { session } else { nil } }
        /// The node serving it; nil for this node.
        package var owner: String? { if case .remote(let node) = location { node } else { nil } }
        package var started = false
        package var startedAt: Date?
        package var connectedAt = ContinuousClock.now
        package var lastActivity = ContinuousClock.now
        package var idleWarned = false
        package var nextSeq: UInt64 = 0
        /// Last seq sent to viewers, so a change of node never sends it backwards.
        package var lastSeq: UInt64?
        package var seqOffset: UInt64 = 0
        package var frames = 0
        package var drops = 0
        package var errors = 0
        /// Kept for `snapshot.jpg`; its JPEG is decoded only when asked for.
        package var latestFrame: Frame?
        /// For the fps figure: frames counted at the last sample.
        package var fpsSampleFrames = 0
        package var fps: Double = 0
        package var lastProgressDrops = 0

        package var isLocal: Bool { session != nil }

        package init(session: StreamSessionHandle) {
            location = .local(session)
        }

        package init(owner: String, started: Bool) {
            location = .remote(node: owner)
            self.started = started
            self.startedAt = started ? Date() : nil
        }

        /// Continues after `lastSeq` when the stream moves here from another node.
        package mutating func takeOver(session: StreamSessionHandle) {
            location = .local(session)
            lastActivity = .now
            idleWarned = false
            nextSeq = max(nextSeq, (lastSeq ?? 0) + (lastSeq == nil ? 0 : 1))
        }
    }

    /// A connected viewer. A class so the hub's lists share one reference;
    /// its `var`s are read and written only under the hub's lock.
    package final class Viewer: @unchecked Sendable {
        package let id: String
        package let mailbox = ViewerMailbox()
        package let format: ViewerFormat
        package let remoteAddress: String
        package let eventLoop: any EventLoop
        package let close: @Sendable () -> Void
        /// What the viewer's token lets it see (everything when auth is off);
        /// a refresh may narrow it, never widen it.
        package var scope: StreamScope
        /// The token it connected with, for per-token limits.
        package let tokenID: String?
        package var streams: Set<String>?
        package var quality: QualityPreference
        /// Housekeeping's verdict from the mailbox's loss figures.
        package var slowness = SlowViewerVerdict()
        package var pingSentAt: ContinuousClock.Instant?
        /// Set once the connection's handler is in the pipeline; drains go to it.
        package var writer: ViewerChannelHandler?

        package init(id: String, format: ViewerFormat, remoteAddress: String, eventLoop: any EventLoop, streams: Set<String>?,
             quality: QualityPreference, scope: StreamScope, tokenID: String?, close: @escaping @Sendable () -> Void) {
            self.id = id
            self.scope = scope
            self.tokenID = tokenID
            self.format = format
            self.remoteAddress = remoteAddress
            self.eventLoop = eventLoop
            self.streams = streams
            self.quality = quality
            self.close = close
        }

        /// The one test of whether a stream's id, events and frames reach this viewer.
        package func watches(_ streamID: String) -> Bool { scope.allows(streamID) && (streams?.contains(streamID) ?? true) }

        package var wantsLow: Bool {
            switch quality {
            case .low: return true
            case .full: return false
            case .auto: return slowness.slow
            }
        }
    }

    struct State {
        package var streams: [String: LiveStream] = [:]
        package var viewers: [String: Viewer] = [:]
        package var nextViewerNumber = 1
        package var nextSessionID: UInt64 = 1
        package var shuttingDown = false
    }

    /// Touched only here and in ViewerHub+Cluster.swift.
    let state = NIOLockedValueBox(State())
    package let logger: Logger
    package let metrics: RelayMetrics
    /// Other nodes, when the relay runs in a cluster; told of every local
    /// stream's life and frames, always outside the hub's lock.
    package let cluster: (any ClusterLink)?

    package init(logger: Logger, metrics: RelayMetrics, cluster: (any ClusterLink)? = nil) {
        self.logger = logger
        self.metrics = metrics
        self.cluster = cluster
    }

    // MARK: Streams

    package func makeSessionID() -> UInt64 {
        state.withLockedValue { s in
            defer { s.nextSessionID += 1 }
            return s.nextSessionID
        }
    }

    /// Registers a streamer connection. If the id is live, the new connection
    /// replaces the old one, which is returned so the caller can close it
    /// with reason `replaced`; viewers see no `stream_ended` in between.
    /// Returns nil when the server is shutting down.
    package func connectStream(_ id: String, session: StreamSessionHandle) -> (replaced: StreamSessionHandle?, firstSeq: UInt64)? {
        let connected: (replaced: StreamSessionHandle?, firstSeq: UInt64, started: Bool, fromNode: String?)? = state.withLockedValue { s in
            guard !s.shuttingDown else { return nil }
            if var existing = s.streams[id] {
                // Another node's stream, or this node's: either way it is taken over.
                let old = existing.session
                let fromNode = existing.owner
                existing.takeOver(session: session)
                s.streams[id] = existing
                return (old, existing.nextSeq, existing.started, fromNode)
            }
            s.streams[id] = LiveStream(session: session)
            return (nil, 0, false, nil)
        }
        guard let connected else { return nil }
        if let fromNode = connected.fromNode {
            logger.info("stream taken over from another node", metadata: ["stream_id": "\(id)", "previous_node": "\(fromNode)"])
        }
        cluster?.localStreamConnected(id, started: connected.started)
        if connected.fromNode != nil { cluster?.interestChanged() }
        return (connected.replaced, connected.firstSeq)
    }

    /// Ends a stream if `session` is still the one serving it, telling its
    /// viewers why. A replaced session's end is ignored.
    package func endStream(_ id: String, session: StreamSessionHandle, reason: StreamEndReason) {
        var drains = DrainRequests()
        let ended: (LiveStream, [Viewer])? = state.withLockedValue { s in
            guard let stream = s.streams[id], stream.session === session else { return nil }
            s.streams[id] = nil
            let viewers = stream.started ? s.viewers.values.filter { $0.watches(id) } : []
            for viewer in viewers where viewer.mailbox.enqueueStreamEnded(id, text: WireMessage.streamEnded(id, reason: reason)) {
                drains.add(viewer)
            }
            return (stream, viewers)
        }
        drains.submit()
        guard let (stream, viewers) = ended else { return }
        cluster?.localStreamEnded(id, reason: reason)
        metrics.streamEnded(id)
        logger.info("stream ended", metadata: [
            "stream_id": "\(id)", "reason": "\(reason.rawValue)", "frames": "\(stream.frames)",
            "drops": "\(stream.drops)", "errors": "\(stream.errors)", "viewers_told": "\(viewers.count)",
        ])
    }

    /// Records a message from the streamer (for the idle timers); for a
    /// frame, returns its seq, which keeps increasing across replacements.
    @discardableResult
    package func streamActivity(_ id: String, isFrame: Bool) -> UInt64 {
        state.withLockedValue { s in
            guard s.streams[id] != nil else { return 0 }
            s.streams[id]!.lastActivity = .now
            s.streams[id]!.idleWarned = false
            let seq = s.streams[id]!.nextSeq
            if isFrame { s.streams[id]!.nextSeq += 1 }
            return seq
        }
    }

    package func streamRejectedFrame(_ id: String, dropped: Bool) {
        state.withLockedValue { s in
            if dropped { s.streams[id]?.drops += 1 } else { s.streams[id]?.errors += 1 }
        }
    }

    // MARK: FrameSink

    package func publish(_ frame: Frame) {
        let id = frame.streamID
        // 1. Under the lock: start the stream if this is its first frame and
        //    take the list of viewers and what each wants.
        var drains = DrainRequests()
        var justStarted = false
        let prepared: (targets: [(Viewer, RenditionKind)], session: StreamSessionHandle)? = state.withLockedValue { s in
            guard var stream = s.streams[id], let session = stream.session, !s.shuttingDown else { return nil }
            let watchers = s.viewers.values.filter { $0.watches(id) }
            if !stream.started {
                justStarted = true
                stream.started = true
                stream.startedAt = Date()
                for viewer in watchers where viewer.mailbox.enqueueControl(WireMessage.streamStarted(id)) { drains.add(viewer) }
                logger.info("stream started", metadata: ["stream_id": "\(id)", "viewers": "\(watchers.count)"])
            }
            stream.frames += 1
            stream.lastSeq = frame.seq
            stream.latestFrame = frame
            s.streams[id] = stream
            return (watchers.map { ($0, $0.wantsLow ? RenditionKind.low : .full) }, session)
        }
        guard let prepared else { return }
        metrics.frameAccepted(streamID: id)
        deliver(frame, to: prepared.targets, drains: &drains) { s in s.streams[id]?.session === prepared.session }
        if justStarted { cluster?.localStreamStarted(id) }
        cluster?.localFrameAccepted(frame)
    }

    /// Steps 2–4 of delivery, the same for this node's frames and other
    /// nodes': serialize, then offer to each mailbox unless `stillCurrent`
    /// says the stream ended or changed hands meanwhile, then wake writers.
    func deliver(_ frame: Frame, to targets: [(Viewer, RenditionKind)], drains: inout DrainRequests,
                 stillCurrent: (State) -> Bool) {
        let id = frame.streamID
        // 2. Outside the lock: serialize once per format and rendition.
        var encoding = FrameEncoding(frame: frame)
        var messages: [(Viewer, RenditionKind, ByteBuffer)] = []
        messages.reserveCapacity(targets.count)
        for (viewer, wanted) in targets {
            let rendition = encoding.available(wanted)
            if let bytes = encoding.message(format: viewer.format, rendition: rendition) {
                messages.append((viewer, rendition, bytes))
            }
        }

        // 3. Under the lock again, so a stream_ended racing with this frame
        //    (timeout, replacement, shutdown) cannot be overtaken by it.
        let replaced: Int = state.withLockedValue { s in
            guard stillCurrent(s), !s.shuttingDown else { return 0 }
            var replaced = 0
            for (viewer, rendition, bytes) in messages {
                let offer = viewer.mailbox.offerFrame(streamID: id, rendition: rendition, bytes: bytes, isText: viewer.format == .json)
                if offer.needsDrain { drains.add(viewer) }
                if offer.replacedOlder { replaced += 1 }
            }
            return replaced
        }
        if replaced > 0 { metrics.framesReplaced(replaced) }
        // 4. One hop per event loop wakes every viewer's writer on it.
        drains.submit()
    }

    package func needsLowRendition(streamID: String) -> Bool {
        state.withLockedValue { s in
            s.viewers.values.contains { $0.watches(streamID) && $0.wantsLow }
        }
    }

    // MARK: Viewers

    /// Adds a viewer; its first message, queued atomically with the
    /// registration, is `viewer_connected` with the live streams it watches.
    package func addViewer(format: ViewerFormat, streams: Set<String>?, quality: QualityPreference, scope: StreamScope = .all,
                   tokenID: String? = nil, remoteAddress: String,
                   eventLoop: any EventLoop, close: @escaping @Sendable () -> Void) -> Viewer? {
        let added: (Viewer, Int)? = state.withLockedValue { s in
            guard !s.shuttingDown else { return nil }
            let id = "v-\(s.nextViewerNumber)"
            s.nextViewerNumber += 1
            let viewer = Viewer(id: id, format: format, remoteAddress: remoteAddress, eventLoop: eventLoop,
                                streams: streams, quality: quality, scope: scope, tokenID: tokenID, close: close)
            let active = s.streams.filter { $0.value.started && viewer.watches($0.key) }.map(\.key).sorted()
            viewer.mailbox.enqueueControl(WireMessage.viewerConnected(viewerID: id, activeStreams: active))
            s.viewers[id] = viewer
            return (viewer, s.viewers.count)
        }
        guard let (viewer, count) = added else { return nil }
        metrics.viewerConnected()
        logger.info("viewer connected", metadata: [
            "viewer_id": "\(viewer.id)", "format": "\(format.rawValue)", "streams": "\(streams.map { $0.sorted().joined(separator: ",") } ?? "all")",
            "remote": "\(remoteAddress)", "viewers": "\(count)",
        ])
        cluster?.interestChanged()
        return viewer
    }

    /// What admission needs to apply the stream and viewer limits.
    package func admissionCounts(streamID: String?, tokenID: String?) -> (streams: Int, streamIsLive: Bool, viewers: Int, tokenViewers: Int) {
        state.withLockedValue { s in
            (s.streams.values.count(where: \.isLocal), streamID.map { s.streams[$0]?.isLocal == true } ?? false, s.viewers.count,
             tokenID.map { id in s.viewers.values.count { $0.tokenID == id } } ?? 0)
        }
    }

    /// Attaches the viewer's socket writer; from now on drains go to it.
    package func attachWriter(_ writer: ViewerChannelHandler, to viewerID: String) {
        state.withLockedValue { s in s.viewers[viewerID]?.writer = writer }
    }

    /// Queues a control message for one viewer and wakes its writer.
    package func send(to viewer: Viewer, _ text: String) {
        var drains = DrainRequests()
        state.withLockedValue { _ in
            if viewer.mailbox.enqueueControl(text) { drains.add(viewer) }
        }
        drains.submit()
    }

    /// Removes a viewer, logging why and how many remain.
    package func removeViewer(_ id: String, reason: ViewerLeaveReason) {
        let removed: (Viewer, Int)? = state.withLockedValue { s in
            guard let viewer = s.viewers.removeValue(forKey: id) else { return nil }
            return (viewer, s.viewers.count)
        }
        guard let (viewer, remaining) = removed else { return }
        cluster?.interestChanged()
        viewer.mailbox.finish()
        viewer.writer.map { writer in viewer.eventLoop.execute { writer.drain() } }
        let stats = viewer.mailbox.statistics
        metrics.viewerDisconnected(id)
        logger.log(level: reason.logLevel, "viewer removed", metadata: [
            "viewer_id": "\(id)", "reason": "\(reason.rawValue)", "delivered": "\(stats.delivered)",
            "replaced": "\(stats.replaced)", "viewers_remaining": "\(remaining)",
        ])
    }

    /// A refreshed token covers less than the one before: frames, events and
    /// lists follow the narrower scope from now on.
    package func narrowScope(_ viewerID: String, to scope: StreamScope) {
        state.withLockedValue { s in s.viewers[viewerID]?.scope = scope }
    }

    /// Changes what a viewer watches; live streams it newly covers are
    /// announced with `stream_started`.
    package func subscribe(_ viewerID: String, to streams: Set<String>?) {
        var drains = DrainRequests()
        state.withLockedValue { s in
            guard let viewer = s.viewers[viewerID] else { return }
            let before = viewer.streams
            viewer.streams = streams
            for (id, stream) in s.streams.sorted(by: { $0.key < $1.key })
            where stream.started && viewer.watches(id) && !(before?.contains(id) ?? true) {
                if viewer.mailbox.enqueueControl(WireMessage.streamStarted(id)) { drains.add(viewer) }
            }
        }
        drains.submit()
        cluster?.interestChanged()
    }

    package func setQuality(_ viewerID: String, _ quality: QualityPreference) {
        state.withLockedValue { s in s.viewers[viewerID]?.quality = quality }
    }

    /// Drops a viewer the server gave up on (stuck socket, no pong): it is
    /// removed, its pending messages discarded and its connection closed.
    package func dropViewer(_ id: String, reason: ViewerLeaveReason) {
        let viewer = state.withLockedValue { $0.viewers[id] }
        guard let viewer else { return }
        viewer.mailbox.discardPending()
        removeViewer(id, reason: reason)
        metrics.viewerDropped()
        viewer.close()
    }

    /// Sends `ping` to every viewer not already waiting to answer one.
    package func pingViewers(now: ContinuousClock.Instant) {
        var drains = DrainRequests()
        state.withLockedValue { s in
            for viewer in s.viewers.values where viewer.pingSentAt == nil {
                viewer.pingSentAt = now
                if viewer.mailbox.enqueueControl(WireMessage.ping) { drains.add(viewer) }
            }
        }
        drains.submit()
    }

    package func pongReceived(_ viewerID: String) {
        state.withLockedValue { s in s.viewers[viewerID]?.pingSentAt = nil }
    }

    // MARK: Snapshots

    /// The stream's latest accepted frame. `owner` names the node serving
    /// it when that is another one: its frames reach this node only while a
    /// viewer here watches it.
    package func latestJPEG(of streamID: String) -> (known: Bool, owner: String?, jpeg: ByteBuffer?) {
        let latest: (Bool, String?, Frame?) = state.withLockedValue { s in
            guard let stream = s.streams[streamID] else { return (false, nil, nil) }
            return (true, stream.owner, stream.latestFrame)
        }
        guard var frame = latest.2 else { return (latest.0, latest.1, nil) }
        return (true, latest.1, frame.resolveJPEG())
    }

    // MARK: Shutdown

    /// Tells every viewer that every live stream ended with reason
    /// `shutdown`, closes the streamers, and lets the viewers' writers drain
    /// and close. New connections are refused from here on.
    package func beginShutdown() {
        var drains = DrainRequests()
        let (streams, viewers): ([(String, LiveStream)], [Viewer]) = state.withLockedValue { s in
            s.shuttingDown = true
            let streams = s.streams.sorted { $0.key < $1.key }
            for (id, stream) in streams where stream.started {
                for viewer in s.viewers.values where viewer.watches(id) {
                    viewer.mailbox.enqueueStreamEnded(id, text: WireMessage.streamEnded(id, reason: .shutdown))
                }
            }
            s.streams.removeAll()
            for viewer in s.viewers.values {
                viewer.mailbox.finish()
                drains.add(viewer)  // to flush what is queued, then close
            }
            return (streams, Array(s.viewers.values))
        }
        drains.submit()
        logger.notice("shutting down: ending streams and closing viewers", metadata: [
            "streams": "\(streams.count)", "viewers": "\(viewers.count)",
        ])
        for (id, stream) in streams {
            metrics.streamEnded(id)
            guard let session = stream.session else { continue }
            session.close(.shutdown)
            cluster?.localStreamEnded(id, reason: .shutdown)
        }
    }

    /// This node's streamers and viewers (other nodes' streams not counted).
    package var connectionCounts: (streams: Int, viewers: Int) {
        state.withLockedValue { ($0.streams.values.count(where: \.isLocal), $0.viewers.count) }
    }
}

/// Viewers whose writers must be woken, collected under the hub's lock and
/// submitted after it: one `execute` per event loop, however many viewers.
package struct DrainRequests {
    private var byLoop: [ObjectIdentifier: (any EventLoop, [ViewerChannelHandler])] = [:]

    package mutating func add(_ viewer: ViewerHub.Viewer) {
        guard let writer = viewer.writer else { return }  // its handler drains when added
        let key = ObjectIdentifier(viewer.eventLoop)
        if byLoop[key] == nil { byLoop[key] = (viewer.eventLoop, []) }
        byLoop[key]!.1.append(writer)
    }

    package func submit() {
        for (loop, writers) in byLoop.values {
            loop.execute { for writer in writers { writer.drain() } }
        }
    }
}
