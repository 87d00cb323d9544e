import Foundation
import Pipeline

/// The hub's side of a cluster: other nodes' streams kept next to this
/// node's, so `viewer_connected`, `stream_started`, frames and
/// `stream_ended` reach viewers the same way whichever node serves a stream.
/// The `ClusterService` calls these as Redis tells it what happened.
extension ViewerHub {
    /// `node` now serves `id`. A streamer connected here for it is replaced
    /// (closed with `replaced`; viewers see no end); otherwise the stream is
    /// recorded, and announced if it has started.
    package func remoteClaimed(_ id: String, by node: String, started: Bool) {
        var drains = DrainRequests()
        let replaced: StreamSessionHandle? = state.withLockedValue { s in
            guard !s.shuttingDown else { return nil }
            var stream = s.streams[id] ?? LiveStream(owner: node, started: false)
            let old = stream.session
            stream.location = .remote(node: node)
            if started, !stream.started { Self.markStarted(&stream, id, viewers: s.viewers, drains: &drains) }
            s.streams[id] = stream
            return old
        }
        drains.submit()
        if let replaced {
            logger.info("stream taken over by another node, closing the connection here", metadata: [
                "stream_id": "\(id)", "node": "\(node)", "remote": "\(replaced.remoteAddress)"])
            replaced.close(.replaced)
        }
        cluster?.interestChanged()
    }

    /// `node`'s stream has its first valid frame.
    package func remoteStarted(_ id: String, by node: String) {
        var drains = DrainRequests()
        let changed: Bool = state.withLockedValue { s in
            guard !s.shuttingDown else { return false }
            var stream = s.streams[id] ?? LiveStream(owner: node, started: false)
            guard stream.owner == node, !stream.started else { return false }
            Self.markStarted(&stream, id, viewers: s.viewers, drains: &drains)
            s.streams[id] = stream
            return true
        }
        drains.submit()
        if changed {
            logger.info("stream started on another node", metadata: ["stream_id": "\(id)", "node": "\(node)"])
            cluster?.interestChanged()
        }
    }

    /// `node`'s stream ended; ignored if another node has taken it over since.
    package func remoteEnded(_ id: String, by node: String, reason: StreamEndReason) {
        var drains = DrainRequests()
        let ended: LiveStream? = state.withLockedValue { s in
            guard let stream = s.streams[id], stream.owner == node else { return nil }
            Self.remove(id, from: &s, reason: reason, drains: &drains)
            return stream
        }
        drains.submit()
        guard let ended else { return }
        metrics.streamEnded(id)
        logger.log(level: reason == .nodeLost ? .warning : .info, "stream ended on another node", metadata: [
            "stream_id": "\(id)", "node": "\(node)", "reason": "\(reason.rawValue)", "frames_here": "\(ended.frames)"])
        cluster?.interestChanged()
    }

    /// The seq viewers here get for `node`'s frame: never lower than one
    /// they already had, even when the stream moved between nodes. Nil if
    /// `node` does not (or no longer) serve the stream.
    package func admitRemoteFrame(_ id: String, from node: String, seq: UInt64) -> UInt64? {
        state.withLockedValue { s in
            guard var stream = s.streams[id], stream.owner == node, stream.started, !s.shuttingDown else { return nil }
            var mapped = seq &+ stream.seqOffset
            if let last = stream.lastSeq, mapped <= last {
                stream.seqOffset = last &+ 1 &- seq
                mapped = last &+ 1
            }
            stream.lastSeq = mapped
            s.streams[id] = stream
            return mapped
        }
    }

    /// Delivers another node's frame (after this node's relay stages) through
    /// the same latest-wins mailboxes as local frames.
    package func deliverRemote(_ frame: Frame, from node: String) {
        let id = frame.streamID
        var drains = DrainRequests()
        let targets: [(Viewer, RenditionKind)]? = state.withLockedValue { s in
            guard var stream = s.streams[id], stream.owner == node, !s.shuttingDown else { return nil }
            stream.frames += 1
            stream.latestFrame = frame
            stream.lastActivity = .now
            s.streams[id] = stream
            return s.viewers.values.filter { $0.watches(id) }.map { ($0, $0.wantsLow ? RenditionKind.low : .full) }
        }
        guard let targets else { return }
        deliver(frame, to: targets, drains: &drains) { $0.streams[id]?.owner == node }
    }

    /// Other nodes' streams some viewer here watches: the frame channels
    /// this node must be subscribed to (one per stream, never per viewer).
    package func watchedRemoteStreams() -> Set<String> {
        state.withLockedValue { s in
            let remote = Set(s.streams.lazy.filter { $0.value.owner != nil }.map(\.key))
            var wanted = Set<String>()
            guard !remote.isEmpty else { return wanted }
            for viewer in s.viewers.values {
                if let list = viewer.streams {
                    for id in list where remote.contains(id) && viewer.scope.allows(id) { wanted.insert(id) }
                } else {
                    for id in remote where !wanted.contains(id) && viewer.scope.allows(id) { wanted.insert(id) }
                }
                if wanted.count == remote.count { break }
            }
            return wanted
        }
    }

    /// Other nodes' streams by the node serving them, for the liveness check.
    package func remoteStreamsByOwner() -> [String: [String]] {
        state.withLockedValue { s in
            var owners: [String: [String]] = [:]
            for (id, stream) in s.streams { if let owner = stream.owner { owners[owner, default: []].append(id) } }
            return owners
        }
    }

    /// This node's streams, to announce again after Redis comes back.
    package func localStreams() -> [(id: String, started: Bool)] {
        state.withLockedValue { s in s.streams.filter(\.value.isLocal).map { ($0.key, $0.value.started) }.sorted { $0.id < $1.id } }
    }

    /// Aligns the hub with the registry read after (re)connecting to Redis:
    /// other nodes' streams that ended meanwhile end here (`closed`; those
    /// whose node is not back yet are left to the liveness check, which
    /// says `node_lost` if it never returns), new ones appear, and a local
    /// stream another live node claimed while this one was cut off is
    /// replaced. Returns the local streams that are still this node's.
    package func resync(registry: [String: (owner: String, started: Bool)], liveNodes: Set<String>, me: String) -> [(id: String, started: Bool)] {
        var drains = DrainRequests()
        var replaced: [(String, StreamSessionHandle, String)] = []
        var ended: [(String, StreamEndReason)] = []
        let mine: [(id: String, started: Bool)] = state.withLockedValue { s in
            guard !s.shuttingDown else { return [] }
            var mine: [(id: String, started: Bool)] = []
            for (id, stream) in s.streams.sorted(by: { $0.key < $1.key }) {
                let entry = registry[id].flatMap { $0.owner != me && liveNodes.contains($0.owner) ? $0 : nil }
                if let session = stream.session {
                    if let entry {
                        var moved = stream
                        moved.location = .remote(node: entry.owner)
                        s.streams[id] = moved
                        replaced.append((id, session, entry.owner))
                    } else {
                        mine.append((id, stream.started))
                    }
                } else if let entry {
                    var updated = stream
                    updated.location = .remote(node: entry.owner)
                    if entry.started, !updated.started { Self.markStarted(&updated, id, viewers: s.viewers, drains: &drains) }
                    s.streams[id] = updated
                } else if liveNodes.contains(stream.owner ?? "") {
                    // Its node is up and no longer lists it: it ended while we were away.
                    Self.remove(id, from: &s, reason: .closed, drains: &drains)
                    ended.append((id, .closed))
                }
                // Otherwise its node has not come back yet (or Redis restarted
                // empty): it keeps the stream until the liveness check says lost.
            }
            for (id, entry) in registry where s.streams[id] == nil && entry.owner != me && liveNodes.contains(entry.owner) {
                var stream = LiveStream(owner: entry.owner, started: false)
                if entry.started { Self.markStarted(&stream, id, viewers: s.viewers, drains: &drains) }
                s.streams[id] = stream
            }
            return mine
        }
        drains.submit()
        for (id, reason) in ended {
            metrics.streamEnded(id)
            logger.info("stream ended on another node while redis was away", metadata: ["stream_id": "\(id)", "reason": "\(reason.rawValue)"])
        }
        for (id, session, node) in replaced {
            logger.info("stream taken over by another node while redis was away, closing the connection here", metadata: [
                "stream_id": "\(id)", "node": "\(node)"])
            session.close(.replaced)
        }
        cluster?.interestChanged()
        return mine
    }

    /// Ends every other node's stream here: Redis has been away longer than
    /// a node may be silent, so nothing says they are still live.
    package func endRemoteStreams(reason: StreamEndReason) -> Int {
        var drains = DrainRequests()
        let ids: [String] = state.withLockedValue { s in
            let ids = s.streams.filter { $0.value.owner != nil }.map(\.key).sorted()
            for id in ids { Self.remove(id, from: &s, reason: reason, drains: &drains) }
            return ids
        }
        drains.submit()
        for id in ids { metrics.streamEnded(id) }
        return ids.count
    }

    package var remoteStreamCount: Int {
        state.withLockedValue { s in s.streams.values.count { $0.owner != nil } }
    }

    private static func markStarted(_ stream: inout LiveStream, _ id: String, viewers: [String: Viewer], drains: inout DrainRequests) {
        stream.started = true
        stream.startedAt = stream.startedAt ?? Date()
        for viewer in viewers.values where viewer.watches(id) && viewer.mailbox.enqueueControl(WireMessage.streamStarted(id)) {
            drains.add(viewer)
        }
    }

    private static func remove(_ id: String, from s: inout State, reason: StreamEndReason, drains: inout DrainRequests) {
        guard let stream = s.streams.removeValue(forKey: id), stream.started else { return }
        for viewer in s.viewers.values where viewer.watches(id)
            && viewer.mailbox.enqueueStreamEnded(id, text: WireMessage.streamEnded(id, reason: reason)) {
            drains.add(viewer)
        }
    }
}
