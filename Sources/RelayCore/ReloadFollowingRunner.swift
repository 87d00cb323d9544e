import Pipeline

/// A stream's pipeline runner that follows reloads.
///
/// It exists so "a reload reaches live streams" is one rule for a
/// streamer's WebSocket, for HTTP ingest and pulled cameras (`StreamFeed`)
/// and for the relayed frames of another node's stream: at the stream's next frame after a reload, the stream runs the
/// pipeline the new file routes it to, with fresh stage state (a fresh
/// error count, an empty rate-limit bucket), as if it had reconnected,
/// but without dropping the camera or its viewers.
package struct ReloadFollowingRunner {
    /// What a reload changed for this stream, for its log line.
    package struct Move: Sendable {
        package let from: String
        package let to: String
        package let generation: Int
    }

    private let streamID: String
    private let live: LiveConfiguration
    private let make: (PipelineDefinition) -> PipelineRunner
    private var runner: PipelineRunner
    private var generation: Int

    package init(streamID: String, live: LiveConfiguration, make: @escaping (PipelineDefinition) -> PipelineRunner) {
        self.streamID = streamID
        self.live = live
        self.make = make
        let current = live.current
        generation = current.number
        runner = make(current.pipeline(forStream: streamID))
    }

    package var pipelineName: String { runner.pipelineName }

    /// Rebuilds the runner if the configuration was reloaded since the last
    /// frame; says what changed. Costs one lock read when nothing did.
    package mutating func followReload() -> Move? {
        guard live.number != generation else { return nil }
        let current = live.current
        let from = runner.pipelineName
        generation = current.number
        runner = make(current.pipeline(forStream: streamID))
        return Move(from: from, to: runner.pipelineName, generation: current.number)
    }

    package mutating func run(_ frame: Frame) -> PipelineResult { runner.run(frame) }

    package mutating func reject(_ rejection: Rejection) -> PipelineResult { runner.reject(rejection) }
}
