import Pipeline

/// The sink: hands every frame that reaches it to the server's `FrameSink`,
/// which delivers it to viewers through per-viewer latest-wins mailboxes.
/// It never waits on a viewer. Must be the last stage; keeps no state.
public struct FanOutStage: Stage {
    public struct Configuration: Sendable {}

    public static let declaration = StageDeclaration(
        name: "fan-out",
        summary: "Deliver the frame to every viewer of the stream (the sink; must be last)",
        details: "Never waits on a viewer: each viewer keeps only the newest frame it has not yet been sent.",
        isSink: true)

    public static func configuration(from parameters: StageParameters) -> Configuration { Configuration() }

    let sink: any FrameSink

    public init(configuration: Configuration, context: StageContext) {
        self.sink = context.sink
    }

    public mutating func process(_ frame: inout Frame) -> StageOutcome {
        sink.publish(frame)
        return .pass
    }
}
