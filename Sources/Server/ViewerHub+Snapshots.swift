import Foundation
import WireProtocol

/// What the JSON API shows, copied out of the hub under its lock and
/// returned as plain values; the API builds its JSON from them afterwards.
extension ViewerHub {
    struct StreamSnapshot {
        let id: String
        let startedAt: Date?
        let frames: Int
        let fps: Double
        let viewers: Int
        let drops: Int
        let errors: Int
        /// The node serving it when that is another one.
        let owner: String?
    }

    struct ViewerSnapshot {
        let id: String
        let streams: Set<String>?
        let format: ViewerFormat
        let quality: QualityPreference
        let receivesLow: Bool
        let slow: Bool
        let statistics: ViewerMailbox.Statistics
    }

    /// Started streams the scope allows, by id.
    func streamSnapshots(scope: StreamScope) -> [StreamSnapshot] {
        state.withLockedValue { s in
            s.streams.filter { $0.value.started && scope.allows($0.key) }.sorted { $0.key < $1.key }.map { id, stream in
                StreamSnapshot(id: id, startedAt: stream.startedAt, frames: stream.frames, fps: stream.fps,
                               viewers: s.viewers.values.count { $0.watches(id) }, drops: stream.drops, errors: stream.errors,
                               owner: stream.owner)
            }
        }
    }

    /// Every viewer, in the order they connected.
    func viewerSnapshots() -> [ViewerSnapshot] {
        state.withLockedValue { s in
            s.viewers.values.sorted { $0.id.count == $1.id.count ? $0.id < $1.id : $0.id.count < $1.id.count }.map { v in
                ViewerSnapshot(id: v.id, streams: v.streams, format: v.format, quality: v.quality, receivesLow: v.wantsLow,
                               slow: v.slowness.slow, statistics: v.mailbox.statistics)
            }
        }
    }
}
