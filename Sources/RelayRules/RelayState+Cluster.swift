import Foundation
import Pipeline

/// Other nodes' streams, kept next to this node's so `viewer_connected`,
/// `stream_started`, frames and `stream_ended` reach viewers the same way
/// whichever node serves a stream. The cluster feeds these events as Redis
/// tells it what happened.
extension RelayState {
    /// `node` now serves `id`. A streamer connected here for it is replaced
    /// (closed with `replaced`; viewers see no end); otherwise the stream is
    /// recorded, and announced if it has started.
    /// `wall` is now, for the stream's start time if this says it started.
    package mutating func remoteClaimed(_ id: String, by node: String, started: Bool, at wall: Date) -> [RelayAction] {
        guard !shuttingDown else { return [] }
        var stream = streams[id] ?? LiveStream(owner: node)
        let replaced = stream.session
        stream.location = .remote(node: node)
        stream.lastOwnerSeq = nil  // a new connection there: its seq may start again
        var actions: [RelayAction] = []
        if started, !stream.started { actions += markStarted(&stream, id, at: wall) }
        insert(id, stream)
        if let replaced {
            actions.append(.log(.info, "stream taken over by another node, closing the connection here", [
                "stream_id": "\(id)", "node": "\(node)", "remote": "\(replaced.remoteAddress)"]))
            actions.append(.closeSession(replaced, .replaced))
        }
        actions.append(.cluster(.interestChanged))
        return actions
    }

    /// `node`'s stream has its first valid frame.
    package mutating func remoteStarted(_ id: String, by node: String, at wall: Date) -> [RelayAction] {
        guard !shuttingDown else { return [] }
        var stream = streams[id] ?? LiveStream(owner: node)
        guard stream.owner == node, !stream.started else { return [] }
        var actions = markStarted(&stream, id, at: wall)
        insert(id, stream)
        actions.append(.log(.info, "stream started on another node", ["stream_id": "\(id)", "node": "\(node)"]))
        actions.append(.cluster(.interestChanged))
        return actions
    }

    /// `node`'s stream ended; ignored if another node has taken it over since.
    package mutating func remoteEnded(_ id: String, by node: String, reason: StreamEndReason) -> [RelayAction] {
        guard let stream = streams[id], stream.owner == node else { return [] }
        var actions = remove(id, reason: reason)
        actions.append(.metric(.streamEnded(id)))
        // Its own node cannot report a stream it lost with itself.
        if reason == .nodeLost, stream.started { actions.append(.event(.streamEnded(stream: id, reason: reason, frames: stream.frames))) }
        actions.append(.log(reason == .nodeLost ? .warning : .info, "stream ended on another node", [
            "stream_id": "\(id)", "node": "\(node)", "reason": "\(reason.rawValue)", "frames_here": "\(stream.frames)"]))
        actions.append(.cluster(.interestChanged))
        return actions
    }

    /// The seq viewers here get for `node`'s frame: never lower than one
    /// they already had, even when the stream moved between nodes. Nil if
    /// `node` does not (or no longer) serve the stream.
    /// A `replay` (the owner's latest frame, sent again) that is not newer
    /// than one viewers here already had is dropped instead.
    package mutating func admitRemoteFrame(_ id: String, from node: String, seq: UInt64, replay: Bool = false) -> UInt64? {
        guard var stream = streams[id], stream.owner == node, stream.started, !shuttingDown else { return nil }
        if replay, let last = stream.lastSeq, seq &+ stream.seqOffset <= last { return nil }
        if !replay, let last = stream.lastOwnerSeq, seq <= last { return nil }
        stream.lastOwnerSeq = seq
        var mapped = seq &+ stream.seqOffset
        if let last = stream.lastSeq, mapped <= last {
            stream.seqOffset = last &+ 1 &- seq
            mapped = last &+ 1
        }
        stream.lastSeq = mapped
        insert(id, stream)
        return mapped
    }

    /// Another node's frame, after this node's relay stages: delivered
    /// through the same latest-wins mailboxes as local frames.
    package mutating func remoteFrameRelayed(_ frame: Frame, from node: String, now: ContinuousClock.Instant) -> [RelayAction] {
        let id = frame.streamID
        guard streams[id]?.owner == node, !shuttingDown else { return [] }
        streams[id]!.frames += 1
        streams[id]!.latestFrame = frame
        streams[id]!.lastActivity = now
        if let capturedAt = frame.capturedAt {
            // The figures only: whether the uplink is delayed is the serving node's call, told as a health event.
            _ = streams[id]!.uplink.record(frame.receivedAt - capturedAt, at: now, wall: frame.receivedAt, rule: uplinkRule)
        }
        let learned = learnPictures(of: frame)
        let ticket = FrameTicket(stream: id, holder: .node(node), replayOf: frame.isReplay ? frame.seq : nil)
        return learned + [.deliver(frame, to: plan(for: id).fanOut, ticket: ticket)]
    }

    /// Other nodes' streams some viewer here watches: the frame channels
    /// this node must be subscribed to (one per stream, never per viewer).
    package func watchedRemoteStreams() -> Set<String> {
        let remote = Set(streams.lazy.filter { $0.value.owner != nil }.map(\.key))
        var wanted = Set<String>()
        guard !remote.isEmpty else { return wanted }
        for viewer in viewers.values {
            if let list = viewer.streams {
                for id in list where remote.contains(id) && viewer.scope.allows(id) { wanted.insert(id) }
            } else {
                for id in remote where !wanted.contains(id) && viewer.scope.allows(id) { wanted.insert(id) }
            }
            if wanted.count == remote.count { break }
        }
        return wanted
    }

    /// Other nodes' streams by the node serving them, for the liveness check.
    package func remoteStreamsByOwner() -> [String: [String]] {
        var owners: [String: [String]] = [:]
        for (id, stream) in streams { if let owner = stream.owner { owners[owner, default: []].append(id) } }
        return owners
    }

    /// This node's streams, to announce again after Redis comes back.
    package func localStreams() -> [(id: String, started: Bool)] {
        streams.filter(\.value.isLocal).map { ($0.key, $0.value.started) }.sorted { $0.id < $1.id }
    }

    package var remoteStreamCount: Int { streams.values.count { $0.owner != nil } }

    /// Aligns the state with the registry read after (re)connecting to
    /// Redis: other nodes' streams that ended meanwhile end here (`closed`;
    /// those whose node is not back yet are left to the liveness check,
    /// which says `node_lost` if it never returns), new ones appear, and a
    /// local stream another live node claimed while this one was cut off is
    /// replaced. Returns the local streams that are still this node's.
    package mutating func resync(registry: [String: (owner: String, started: Bool)], liveNodes: Set<String>, me: String, at wall: Date)
        -> ([(id: String, started: Bool)], [RelayAction]) {
        guard !shuttingDown else { return ([], []) }
        var mine: [(id: String, started: Bool)] = []
        var actions: [RelayAction] = []
        for (id, stream) in streams.sorted(by: { $0.key < $1.key }) {
            let entry = registry[id].flatMap { $0.owner != me && liveNodes.contains($0.owner) ? $0 : nil }
            if let session = stream.session {
                if let entry {
                    update(id) { $0.location = .remote(node: entry.owner) }
                    actions.append(.log(.info, "stream taken over by another node while redis was away, closing the connection here", [
                        "stream_id": "\(id)", "node": "\(entry.owner)"]))
                    actions.append(.closeSession(session, .replaced))
                } else {
                    mine.append((id, stream.started))
                }
            } else if let entry {
                var updated = stream
                updated.location = .remote(node: entry.owner)
                if entry.started, !updated.started { actions += markStarted(&updated, id, at: wall) }
                insert(id, updated)
            } else if liveNodes.contains(stream.owner ?? "") {
                // Its node is up and no longer lists it: it ended while we were away.
                actions += remove(id, reason: .closed)
                actions.append(.metric(.streamEnded(id)))
                actions.append(.log(.info, "stream ended on another node while redis was away", ["stream_id": "\(id)", "reason": "closed"]))
            }
            // Otherwise its node has not come back yet (or Redis restarted
            // empty): it keeps the stream until the liveness check says lost.
        }
        for (id, entry) in registry.sorted(by: { $0.key < $1.key })
        where streams[id] == nil && entry.owner != me && liveNodes.contains(entry.owner) {
            var stream = LiveStream(owner: entry.owner)
            if entry.started { actions += markStarted(&stream, id, at: wall) }
            insert(id, stream)
        }
        actions.append(.cluster(.interestChanged))
        return (mine, actions)
    }

    /// Ends every other node's stream here: Redis has been away longer than
    /// a node may be silent, so nothing says they are still live.
    package mutating func endRemoteStreams(reason: StreamEndReason) -> ([String], [RelayAction]) {
        let ids = streams.filter { $0.value.owner != nil }.map(\.key).sorted()
        var actions: [RelayAction] = []
        for id in ids {
            actions += remove(id, reason: reason)
            actions.append(.metric(.streamEnded(id)))
        }
        return (ids, actions)
    }
}
