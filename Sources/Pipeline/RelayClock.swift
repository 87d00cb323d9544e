import Foundation

/// The time the relay's timed rules read and wait on, given to the relay
/// rather than taken from the system: a token's `exp`, the revocation
/// file's checks, idle streams, viewers' pings, pulled cameras' timeouts.
/// (What a viewer's link does is stamped by the kernel's real time, so the
/// rules over it, stall drops and delivery reviews, read the real clock.)
///
/// It exists so those rules are tested on a clock the test moves ("the
/// warning at exp − 1 s, the close at exp"), not by sleeping and hoping a
/// loaded machine keeps up. Production runs `SystemRelayClock`.
public protocol RelayClock: Sendable {
    /// Now, as wall time.
    var now: Date { get }
    /// Now on the monotonic clock the relay's own timers compare (idle streams, pings).
    var instant: ContinuousClock.Instant { get }
    /// Returns once `now` has reached `deadline` (at once if it has); throws when the task is cancelled.
    func sleep(until deadline: Date) async throws
}

extension RelayClock {
    public func sleep(for duration: Duration) async throws {
        try await sleep(until: now.addingTimeInterval(duration.seconds))
    }
}

/// The system's clock.
public struct SystemRelayClock: RelayClock {
    public init() {}
    public var now: Date { Date() }
    public var instant: ContinuousClock.Instant { .now }
    public func sleep(until deadline: Date) async throws {
        let left = deadline.timeIntervalSinceNow
        if left > 0 { try await Task.sleep(for: .milliseconds(Int64((left * 1000).rounded(.up)))) }
        try Task.checkCancellation()
    }
}
