import Pipeline

/// Rejects frames whose payload is larger than `maxBytes`, before anything
/// decodes them, so an oversized message costs a length check and nothing more.
public struct SizeLimitStage: Stage {
    public struct Configuration: Sendable {
        public var maxBytes: Int
    }

    static let maxBytes = Parameter.integer(
        "maxBytes", default: 4_000_000, in: 1...64_000_000,
        help: "Largest payload accepted, in bytes as it arrived (the data URL's length for text frames)")

    public static let declaration = StageDeclaration(
        name: "size-limit",
        summary: "Reject frames larger than maxBytes before anything decodes them",
        details: "Rejects with code too_large; keeps no state.",
        parameters: [maxBytes])

    public static func configuration(from parameters: StageParameters) -> Configuration {
        Configuration(maxBytes: parameters[maxBytes])
    }

    let configuration: Configuration

    public init(configuration: Configuration, context: StageContext) {
        self.configuration = configuration
    }

    public mutating func process(_ frame: inout Frame) -> StageOutcome {
        let size = frame.payloadSize
        guard size <= configuration.maxBytes else {
            return .reject(Rejection(stage: Self.declaration.name, code: "too_large",
                                     detail: "payload is \(size) bytes, limit is \(configuration.maxBytes)"))
        }
        guard size > 0 else {
            return .reject(Rejection(stage: Self.declaration.name, code: "empty", detail: "payload is empty"))
        }
        return .pass
    }
}
