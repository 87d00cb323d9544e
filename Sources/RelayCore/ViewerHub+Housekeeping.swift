import Foundation

/// What housekeeping asks of the hub, one short critical section each, with
/// the answers returned as values: no caller's code runs under the lock, and
/// what changes (idle warnings, fps samples, slow verdicts, progress marks)
/// is changed here, by the hub, not copied back by hand.
extension ViewerHub {
    /// A local stream silent for too long: to ping (`warn`) or to close.
    package struct IdleStream {
        package let id: String
        package let session: StreamSessionHandle
        package let idle: Duration
        package let timedOut: Bool
    }

    /// Local streams silent past `warnAfter` (each warned once per silence) or `closeAfter`.
    /// Another node's streams are that node's to time out.
    package func idleStreams(now: ContinuousClock.Instant, warnAfter: Duration, closeAfter: Duration) -> [IdleStream] {
        state.withLockedValue { s in
            var idle: [IdleStream] = []
            for (id, stream) in s.streams {
                guard let session = stream.session else { continue }
                let silence = now - stream.lastActivity
                if silence >= closeAfter {
                    idle.append(IdleStream(id: id, session: session, idle: silence, timedOut: true))
                } else if silence >= warnAfter, !stream.idleWarned {
                    s.streams[id]?.idleWarned = true
                    idle.append(IdleStream(id: id, session: session, idle: silence, timedOut: false))
                }
            }
            return idle
        }
    }

    /// Viewers whose socket has accepted nothing for at least `limit` while frames waited.
    package func viewersBlocked(atLeast limit: Duration, now: ContinuousClock.Instant) -> [String] {
        state.withLockedValue { s in s.viewers.values.filter { ($0.mailbox.blockedFor(now: now) ?? .zero) >= limit }.map(\.id) }
    }

    /// Viewers that have not answered a ping sent at least `limit` ago.
    package func viewersWithUnansweredPing(olderThan limit: Duration, now: ContinuousClock.Instant) -> [String] {
        state.withLockedValue { s in s.viewers.values.filter { $0.pingSentAt.map { now - $0 >= limit } ?? false }.map(\.id) }
    }

    /// One sampling period's figures, for metrics and logs.
    package struct Sample {
        package var streams: [(id: String, fps: Double, viewers: Int)] = []
        package var viewers: [(id: String, lossPercent: Double)] = []
        /// Viewers whose slow verdict changed in this period, with the new verdict.
        package var slowChanges: [(id: String, slow: Bool)] = []
    }

    /// Closes a sampling period of `elapsed`: each stream's fps over it and
    /// each viewer's slow verdict over its measuring window.
    package func sample(elapsed: Duration, slowLossRatio: Double) -> Sample {
        let seconds = elapsed.seconds
        return state.withLockedValue { s in
            var sample = Sample()
            for (id, stream) in s.streams {
                let fps = Double(stream.frames - stream.fpsSampleFrames) / seconds
                s.streams[id]?.fps = fps
                s.streams[id]?.fpsSampleFrames = stream.frames
                sample.streams.append((id, fps, s.viewers.values.count { $0.watches(id) }))
            }
            for (id, viewer) in s.viewers {
                let window = viewer.mailbox.takeWindow()
                if let slow = viewer.slowness.close(offered: window.offered, replaced: window.replaced, threshold: slowLossRatio) {
                    sample.slowChanges.append((id, slow))
                }
                sample.viewers.append((id, viewer.mailbox.statistics.lossPercent))
            }
            return sample
        }
    }

    /// One progress line's figures per started stream, since the last call.
    package func progress() -> [(id: String, frames: Int, fps: Double, viewers: Int, dropsSinceLast: Int)] {
        state.withLockedValue { s in
            s.streams.filter(\.value.started).sorted { $0.key < $1.key }.map { id, stream in
                let dropped = stream.drops + stream.errors
                s.streams[id]?.lastProgressDrops = dropped
                return (id, stream.frames, stream.fps, s.viewers.values.count { $0.watches(id) }, dropped - stream.lastProgressDrops)
            }
        }
    }
}
