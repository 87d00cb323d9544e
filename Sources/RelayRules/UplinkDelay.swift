import Foundation
import Pipeline

/// How late a stream's pictures reach the relay: for each frame with a
/// capture time, received − captured (ms, the relay's clock). Kept per
/// stream for `/api/streams`, the metrics and the admin page's chart, and
/// judged: a stream whose delay stays over the threshold is told as
/// `stream_health` kind `uplink`, state `delayed`, and `ok` once it stays
/// under it again, so a camera on a failing Wi-Fi is seen for what it is,
/// not as a live picture.
///
/// Plain value: the time (`at`, the relay's monotonic clock; `wall`, its
/// wall clock in ms) comes with each frame.
struct UplinkDelay: Sendable {
    /// The last delays, for the p95: a bounded ring.
    private var recent: [Int64] = []
    private var next = 0
    static let window = 64
    private(set) var last: Int64?
    /// When the delay last went over (or, while delayed, under) the threshold.
    private var crossedAt: ContinuousClock.Instant?
    private var crossedWall: Int64 = 0
    private(set) var delayed = false

    init() {}

    /// The rule's figures: over `threshold` for `hold` makes it delayed,
    /// under it for `hold` makes it ok again.
    struct Rule: Sendable, Equatable {
        var threshold: Duration
        var hold: Duration
        init(threshold: Duration = .seconds(1), hold: Duration = .seconds(2)) {
            self.threshold = threshold
            self.hold = hold
        }
    }

    /// Records one frame's delay; returns the health event when the state changes.
    mutating func record(_ delay: Int64, at: ContinuousClock.Instant, wall: Int64, rule: Rule) -> StageEvent? {
        last = delay
        if recent.count < Self.window { recent.append(delay) } else { recent[next] = delay }
        next = (next + 1) % Self.window
        let over = delay > rule.threshold.milliseconds
        guard over != delayed else {
            crossedAt = nil  // back on the side it is on: the other side's clock restarts
            return nil
        }
        if crossedAt == nil {
            crossedAt = at
            crossedWall = wall
        }
        guard at - crossedAt! >= rule.hold else { return nil }
        delayed = over
        crossedAt = nil
        let since = Date(timeIntervalSince1970: Double(crossedWall) / 1000)
        return StageEvent(kind: Self.kind, state: over ? Self.delayedState : StageEvent.ok, since: since,
                          details: [("delay_ms", .number(Double(delay))), ("threshold_ms", .number(Double(rule.threshold.milliseconds)))])
    }

    static let kind = "uplink"
    static let delayedState = "delayed"

    /// The 95th percentile of the last frames' delays (ms), nil before any.
    var p95: Int64? {
        guard !recent.isEmpty else { return nil }
        let sorted = recent.sorted()
        return sorted[min(sorted.count - 1, sorted.count * 95 / 100)]
    }
}
