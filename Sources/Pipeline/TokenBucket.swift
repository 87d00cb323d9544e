/// A token bucket: `rate` tokens a second, holding at most `burst`.
///
/// One shape for every "no more than N a second" rule — the `rate-limit`
/// stage, the relay's per-stream message limit, per-address upgrade rates —
/// so they all count the same way.
public struct TokenBucket: Sendable {
    public let rate: Double
    public let burst: Double
    public private(set) var tokens: Double
    private var refilledAt: ContinuousClock.Instant?

    public init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
        self.tokens = burst
    }

    /// Takes one token if there is one.
    public mutating func take(at now: ContinuousClock.Instant = .now) -> Bool {
        refill(at: now)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    /// True when the bucket has refilled completely, so forgetting it changes nothing.
    public mutating func isFull(at now: ContinuousClock.Instant = .now) -> Bool {
        refill(at: now)
        return tokens >= burst
    }

    private mutating func refill(at now: ContinuousClock.Instant) {
        if let refilledAt {
            tokens = min(burst, tokens + max(0, (now - refilledAt).seconds) * rate)
        }
        refilledAt = now
    }
}
