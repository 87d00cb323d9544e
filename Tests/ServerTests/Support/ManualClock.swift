import NIOConcurrencyHelpers

/// A clock a test moves itself, for rules that count time (token buckets,
/// timeouts), so the test neither sleeps nor depends on the machine's speed.
final class ManualClock: Sendable {
    private let instant = NIOLockedValueBox(ContinuousClock.now)

    var now: @Sendable () -> ContinuousClock.Instant { { [instant] in instant.withLockedValue { $0 } } }

    func advance(by duration: Duration) { instant.withLockedValue { $0 += duration } }
}
