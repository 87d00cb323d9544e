import Foundation
import WireProtocol

/// What the JSON API shows, copied out of the hub under its lock and
/// returned as plain values; the API builds its JSON from them afterwards.
extension ViewerHub {
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
    }

    package struct ViewerSnapshot {
        package let id: String
        package let streams: Set<String>?
        package let format: ViewerFormat
        package let quality: QualityPreference
        package let receivesLow: Bool
        package let slow: Bool
        package let statistics: ViewerMailbox.Statistics
    }

    /// Started streams the scope allows, by id.
    package func streamSnapshots(scope: StreamScope) -> [StreamSnapshot] {
        state.withLockedValue { s in
            s.streams.filter { $0.value.started && scope.allows($0.key) }.sorted { $0.key < $1.key }.map { id, stream in
                StreamSnapshot(id: id, startedAt: stream.startedAt, frames: stream.frames, fps: stream.fps,
                               viewers: s.viewers.values.count { $0.watches(id) }, drops: stream.drops, errors: stream.errors,
                               owner: stream.owner)
            }
        }
    }

    /// Every viewer, in the order they connected.
    package func viewerSnapshots() -> [ViewerSnapshot] {
        state.withLockedValue { s in
            s.viewers.values.sorted { $0.id.count == $1.id.count ? $0.id < $1.id : $0.id.count < $1.id.count }.map { v in
                ViewerSnapshot(id: v.id, streams: v.streams, format: v.format, quality: v.quality, receivesLow: v.wantsLow,
                               slow: v.slowness.slow, statistics: v.mailbox.statistics)
            }
        }
    }
}
