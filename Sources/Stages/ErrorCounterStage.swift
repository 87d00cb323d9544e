import Pipeline

/// Counts the frames rejected before it in the chain (and messages that did
/// not parse at all) and ends the stream with reason `errors` when the count
/// reaches `maxErrors`. In `consecutive` mode a frame that reaches it resets
/// the count, so only an unbroken run of bad frames ends a stream.
///
/// Place it after the validators: it only sees rejections from stages
/// before it. Per stream it keeps one counter.
public struct ErrorCounterStage: Stage {
    public struct Configuration: Sendable {
        public var maxErrors: Int
        public var consecutive: Bool
    }

    static let maxErrors = Parameter.integer(
        "maxErrors", default: 10, in: 1...1_000_000,
        help: "Bad frames that end the stream with reason \"errors\"")
    static let mode = Parameter.choice(
        "mode", ["consecutive", "total"], default: "consecutive",
        help: "consecutive: a good frame resets the count; total: count over the stream's life")

    public static let declaration = StageDeclaration(
        name: "error-counter",
        summary: "End the stream with reason \"errors\" after maxErrors bad frames",
        details: "Observes rejections from the stages before it; passes every frame. Keeps one counter per stream.",
        parameters: [maxErrors, mode])

    public static func configuration(from parameters: StageParameters) -> Configuration {
        Configuration(maxErrors: parameters[maxErrors], consecutive: parameters[mode] == "consecutive")
    }

    let configuration: Configuration
    let context: StageContext
    public private(set) var count = 0

    public init(configuration: Configuration, context: StageContext) {
        self.configuration = configuration
        self.context = context
    }

    public mutating func process(_ frame: inout Frame) -> StageOutcome {
        if configuration.consecutive { count = 0 }
        return .pass
    }

    public mutating func observe(_ rejection: Rejection) -> StreamEndReason? {
        count += 1
        guard count >= configuration.maxErrors else { return nil }
        context.logger.warning("stream has too many bad frames, closing it", metadata: [
            "bad_frames": "\(count)", "max_errors": "\(configuration.maxErrors)", "last_reason": "\(rejection)",
        ])
        return .errors
    }
}
