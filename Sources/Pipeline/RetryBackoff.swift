/// The waits between attempts to reach something that went away: doubling
/// from `first` to `cap`, each stretched by a random share up to `jitter`.
///
/// It exists so every retry loop of the relay (cameras it pulls, webhooks,
/// Redis) backs off the same way, and so many relays, or many sources of
/// one camera server, that lost it together do not return in step.
public struct RetryBackoff: Sendable, Equatable {
    public let first: Duration
    public let cap: Duration
    /// 0.25: a wait is its base plus up to a quarter more.
    public let jitter: Double

    public init(first: Duration, cap: Duration, jitter: Double = 0.25) {
        self.first = first
        self.cap = max(cap, first)
        self.jitter = jitter
    }

    /// The wait before retry `attempt` (1 for the first retry), without jitter.
    public func base(attempt: Int) -> Duration {
        min(first * (1 << min(max(attempt - 1, 0), 30)), cap)
    }

    /// The wait before retry `attempt`, `unit` (0..<1, random in production) choosing its jitter.
    public func delay(attempt: Int, unit: Double = Double.random(in: 0..<1)) -> Duration {
        let base = base(attempt: attempt)
        return base + base * (jitter * unit)
    }
}
