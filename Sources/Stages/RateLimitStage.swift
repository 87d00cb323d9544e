import Pipeline

/// Drops frames that arrive faster than `maxFps`, with a token bucket so a
/// sender at exactly the limit with ordinary jitter loses nothing. A drop is
/// not an error: the error counter does not see it.
///
/// Per stream it keeps the bucket's level and the last arrival time.
public struct RateLimitStage: Stage {
    public struct Configuration: Sendable {
        public var maxFps: Double
        public var burst: Double
    }

    static let maxFps = Parameter.number(
        "maxFps", default: 30, in: 0.1...1000, help: "Frames per second let through on average")
    static let burst = Parameter.integer(
        "burst", default: 2, in: 1...1000, help: "Frames that may arrive back to back above the rate")

    public static let declaration = StageDeclaration(
        name: "rate-limit",
        summary: "Drop frames arriving faster than maxFps (token bucket)",
        details: "Drops (not rejects) with reason rate_limited. Keeps a token bucket per stream.",
        parameters: [maxFps, burst])

    public static func configuration(from parameters: StageParameters) -> Configuration {
        Configuration(maxFps: parameters[maxFps], burst: Double(parameters[burst]))
    }

    var bucket: TokenBucket

    public init(configuration: Configuration, context: StageContext) {
        self.bucket = TokenBucket(rate: configuration.maxFps, burst: configuration.burst)
    }

    public mutating func process(_ frame: inout Frame) -> StageOutcome {
        bucket.take(at: frame.arrival) ? .pass : .drop(reason: "rate_limited")
    }
}
