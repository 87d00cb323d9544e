/// A validated `pipelines.json`: named pipelines, each a list of configured
/// stages ready to be instantiated per stream.
public struct PipelineConfig: Sendable {
    public let defaultPipeline: String
    /// In file order.
    public let pipelines: [PipelineDefinition]
    /// The `"delivery"` object: which policy picks each viewer's renditions.
    public let delivery: ConfiguredPolicy
    /// `"routes"`, in file order: the first that matches a stream picks its pipeline.
    public let routes: [PipelineRoute]
    /// `"sources"`, in file order: cameras the relay pulls, each published as its stream.
    public let sources: [PulledSource]

    public init(defaultPipeline: String, pipelines: [PipelineDefinition], delivery: ConfiguredPolicy = .standard,
                routes: [PipelineRoute] = [], sources: [PulledSource] = []) {
        self.defaultPipeline = defaultPipeline
        self.pipelines = pipelines
        self.delivery = delivery
        self.routes = routes
        self.sources = sources
    }

    /// The source that publishes `streamID`, if the relay pulls it.
    public func source(of streamID: String) -> PulledSource? {
        sources.first { $0.streamID == streamID }
    }

    public func pipeline(named name: String) -> PipelineDefinition? {
        pipelines.first { $0.name == name }
    }

    /// The pipeline a stream runs: the first route that matches it, else
    /// `fallback` (the relay's `--pipeline`) or the file's default. The
    /// loader has checked every name, so this always finds one.
    public func pipeline(forStream streamID: String, fallback: String? = nil) -> PipelineDefinition {
        guard let route = routes.first(where: { $0.matches(streamID) }), let routed = pipeline(named: route.pipeline) else {
            return unroutedPipeline(fallback: fallback)
        }
        return routed
    }

    /// The pipeline of a stream no route matches: `fallback` (`--pipeline`), else the default.
    public func unroutedPipeline(fallback: String? = nil) -> PipelineDefinition {
        fallback.flatMap(pipeline(named:)) ?? pipeline(named: defaultPipeline) ?? pipelines[0]
    }
}

/// One named pipeline.
public struct PipelineDefinition: Sendable {
    public let name: String
    public let description: String
    public let stages: [ConfiguredStage]

    /// A fresh runner with new stage instances for one stream.
    public func makeRunner(context: StageContext, observer: (any PipelineObserver)? = nil) -> PipelineRunner {
        PipelineRunner(
            pipelineName: name,
            stageNames: stages.map(\.declaration.name),
            stages: stages.map { $0.makeInstance(context) },
            observer: observer
        )
    }

    /// A runner for frames another node accepted: only the stages declared
    /// `runsOnRelayedFrames` (downscale, the sink), with this node's settings.
    public func makeRelayRunner(context: StageContext, observer: (any PipelineObserver)? = nil) -> PipelineRunner {
        let relayed = stages.filter(\.declaration.runsOnRelayedFrames)
        return PipelineRunner(
            pipelineName: name,
            stageNames: relayed.map(\.declaration.name),
            stages: relayed.map { $0.makeInstance(context) },
            observer: observer
        )
    }
}

/// A stage as written in the config: its declaration, its parameters as
/// given, and the factory for per-stream instances.
public struct ConfiguredStage: Sendable {
    public let declaration: StageDeclaration
    public let parameters: StageParameters
    let makeInstance: @Sendable (StageContext) -> any Stage
}

/// One thing wrong with a config file.
public struct ConfigProblem: Sendable, Equatable, CustomStringConvertible {
    /// JSON path such as `pipelines.standard.stages[2].mode`, or
    /// `line 3, column 14` for a syntax error.
    public let path: String
    public let reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
}

/// Every problem found in a config file; nothing starts on a bad file.
public struct ConfigError: Error, CustomStringConvertible {
    public let source: String
    public let problems: [ConfigProblem]

    public init(source: String, problems: [ConfigProblem]) {
        self.source = source
        self.problems = problems
    }

    public var description: String {
        let count = problems.count == 1 ? "1 problem" : "\(problems.count) problems"
        return "\(source): \(count)\n" + problems.map { "  \($0)" }.joined(separator: "\n")
    }
}
