import Foundation
import Pipeline
import WireProtocol

/// What housekeeping asks of the state: timers, samples and the figures
/// the API shows, each returned as plain values.
extension RelayState {
    /// A local stream silent for too long: to ping (`warn`) or to close.
    package struct IdleStream {
        package let id: String
        package let session: StreamSessionHandle
        package let idle: Duration
        package let timedOut: Bool
        /// Whether a frame came, for the log: only a started stream's silence is an event.
        package let started: Bool
    }

    /// Local streams silent past `warnAfter` (each warned once per silence)
    /// or `closeAfter`. Another node's streams are that node's to time out.
    /// A warned stream raises `stream_idle` only once started: like
    /// `stream_ended`, no event speaks of a stream before its `stream_started`.
    package mutating func idleStreams(now: ContinuousClock.Instant, warnAfter: Duration, closeAfter: Duration)
        -> (idle: [IdleStream], actions: [RelayAction]) {
        var idle: [IdleStream] = []
        var actions: [RelayAction] = []
        for (id, stream) in streams.sorted(by: { $0.key < $1.key }) {
            guard let session = stream.session, let lastActivity = stream.lastActivity else { continue }
            let silence = now - lastActivity
            if silence >= closeAfter {
                idle.append(IdleStream(id: id, session: session, idle: silence, timedOut: true, started: stream.started))
            } else if silence >= warnAfter, !stream.idleWarned {
                update(id) { $0.idleWarned = true }
                idle.append(IdleStream(id: id, session: session, idle: silence, timedOut: false, started: stream.started))
                if stream.started { actions.append(.event(.streamIdle(stream: id, silentFor: silence))) }
            }
        }
        return (idle, actions)
    }

    /// Viewers that have not answered a ping sent at least `limit` ago.
    package func viewersWithUnansweredPing(olderThan limit: Duration, now: ContinuousClock.Instant) -> [String] {
        viewerIDs { $0.pingSentAt.map { now - $0 >= limit } ?? false }
    }


    /// One sampling period's figures, for metrics and logs.
    package struct PeriodFigures {
        /// `ingestDelayP95`: capture to receipt (ms) over the last frames, when they carry capture times.
        package var streams: [(id: String, fps: Double, viewers: Int, ingestDelayP95: Int64?)] = []
        /// Viewers whose slow verdict changed in this period, with the new verdict.
        package var slowChanges: [(id: String, slow: Bool)] = []
        /// Renditions the viewers' policies changed.
        package var renditionChanges: [RenditionChange] = []
    }

    /// Closes a sampling period of `elapsed`: each stream's fps over it,
    /// each viewer's slow verdict from what its mailbox counted, and each
    /// viewer's policy run on that window and its link (`links`, by viewer).
    package mutating func sample(elapsed: Duration, windows: [String: LossWindow], slowLossRatio: Double,
                                 links: [String: LinkFigures] = [:], now: ContinuousClock.Instant) -> PeriodFigures {
        let seconds = elapsed.seconds
        var sample = PeriodFigures()
        for id in streams.keys.sorted() {
            let frames = streams[id]!.frames
            let fps = Double(frames - streams[id]!.fpsSampleFrames) / seconds
            let delay = streams[id]!.uplink.p95
            update(id) {
                $0.fps = fps
                $0.fpsSampleFrames = frames
                if $0.started { $0.history.add(fps: fps, age: delay, elapsed: elapsed) }
            }
            sample.streams.append((id, fps, viewers.values.count { $0.watches(id) }, delay))
        }
        for id in viewerIDs(where: { windows[$0.id] != nil }) {
            guard let window = windows[id],
                  let slow = viewers[id]!.slowness.close(offered: window.offered, replaced: window.replaced, threshold: slowLossRatio)
            else { continue }
            sample.slowChanges.append((id, slow))
        }
        sample.renditionChanges = reviewDelivery(windows: windows, links: links, now: now)
        return sample
    }

    /// Runs every viewer's delivery policy on its link and its frames
    /// offered and replaced (`windows`): each second with the window just
    /// closed, and half-way through it with the window so far, so a link
    /// that cannot carry what it is sent is stepped down within half a
    /// second of its first frames instead of a whole one.
    package mutating func reviewDelivery(windows: [String: LossWindow], links: [String: LinkFigures],
                                         now: ContinuousClock.Instant) -> [RenditionChange] {
        var changes: [RenditionChange] = []
        let menu = renditionMenu()
        for id in viewerIDs() {
            if let link = links[id] { policies[id]?.link = link }
            changes += chooseRenditions(for: id, now: now, window: windows[id], menu: menu)
        }
        return changes
    }

    /// One progress line's figures per started stream, since the last call.
    package mutating func progress() -> [(id: String, frames: Int, fps: Double, viewers: Int, dropsSinceLast: Int)] {
        streams.filter(\.value.started).keys.sorted().map { id in
            let stream = streams[id]!
            let dropped = stream.drops + stream.errors
            update(id) { $0.lastProgressDrops = dropped }
            return (id, stream.frames, stream.fps, watchers(of: id).count, dropped - stream.lastProgressDrops)
        }
    }

    /// What admission needs to apply the stream and viewer limits.
    package func admissionCounts(streamID: String?, tokenID: String?) -> (streams: Int, streamIsLive: Bool, viewers: Int, tokenViewers: Int) {
        (streams.values.count(where: \.isLocal), streamID.map { streams[$0]?.isLocal == true } ?? false, viewers.count,
         tokenID.map { id in viewers.values.count { $0.tokenID == id } } ?? 0)
    }

    /// This node's streamers and viewers (other nodes' streams not counted).
    package var connectionCounts: (streams: Int, viewers: Int) {
        (streams.values.count(where: \.isLocal), viewers.count)
    }

    /// A stream as `/api/streams` shows it.
    package struct StreamSnapshot {
        package let id: String
        package let startedAt: Date?
        package let frames: Int
        package let fps: Double
        package let viewers: Int
        package let drops: Int
        package let errors: Int
        /// The node serving it when that is another one.
        package let owner: String?
        package let pipeline: String?
        package let health: [String: StageEvent]
        /// Capture to receipt (ms): the last frame's and the p95 of the last ones; nil without capture times.
        package let ingestDelay: Int64?
        package let ingestDelayP95: Int64?
        package let history: StreamHistory
    }

    /// Started streams the scope allows, by id.
    package func streamSnapshots(scope: StreamScope) -> [StreamSnapshot] {
        streams.filter { $0.value.started && scope.allows($0.key) }.sorted { $0.key < $1.key }.map { id, stream in
            StreamSnapshot(id: id, startedAt: stream.startedAt, frames: stream.frames, fps: stream.fps,
                           viewers: watchers(of: id).count, drops: stream.drops, errors: stream.errors, owner: stream.owner,
                           pipeline: stream.pipeline, health: stream.health, ingestDelay: stream.uplink.last,
                           ingestDelayP95: stream.uplink.p95, history: stream.history)
        }
    }
}
