/// Runs one stream's frames through its stage instances.
///
/// Owned by the stream's session and used from its task only, so the stages'
/// per-stream state needs no locking. It times every stage and reports to an
/// optional observer (the server's metrics), and it turns stage outcomes
/// into one `PipelineResult` that names the deciding stage.
public struct PipelineRunner {
    public let pipelineName: String
    public let stageNames: [String]
    var stages: [any Stage]
    let observer: (any PipelineObserver)?

    init(pipelineName: String, stageNames: [String], stages: [any Stage], observer: (any PipelineObserver)?) {
        self.pipelineName = pipelineName
        self.stageNames = stageNames
        self.stages = stages
        self.observer = observer
    }

    /// Runs `frame` through every stage until one does not pass it.
    public mutating func run(_ frame: Frame) -> PipelineResult {
        var frame = frame
        for index in stages.indices {
            let start = ContinuousClock.now
            let outcome = stages[index].process(&frame)
            observer?.stageFinished(stage: stageNames[index], duration: .now - start, outcome: outcome)
            switch outcome {
            case .pass:
                continue
            case .drop(let reason):
                return .dropped(stage: stageNames[index], reason: reason)
            case .closeStream(let reason):
                return .streamClosed(stage: stageNames[index], reason: reason)
            case .reject(let rejection):
                return .rejected(rejection, endStream: propagate(rejection, after: index))
            }
        }
        return .delivered
    }

    /// Feeds a message that could not be made into a frame at all (invalid
    /// JSON, a non-string `frame`) to every stage as a rejection, so error
    /// counting sees it like any other bad frame.
    public mutating func reject(_ rejection: Rejection) -> PipelineResult {
        observer?.rejectedBeforePipeline(rejection)
        return .rejected(rejection, endStream: propagate(rejection, after: -1))
    }

    private mutating func propagate(_ rejection: Rejection, after index: Int) -> StreamEndReason? {
        var end: StreamEndReason?
        for later in stages.indices where later > index {
            if let reason = stages[later].observe(rejection), end == nil { end = reason }
        }
        return end
    }
}

/// What became of one frame.
public enum PipelineResult: Sendable, Equatable {
    /// Every stage passed it; the sink has it.
    case delivered
    /// Filtered out by `stage` (not an error).
    case dropped(stage: String, reason: String)
    /// Bad frame; `endStream` is set when a later stage (the error counter)
    /// decided the stream must end because of it.
    case rejected(Rejection, endStream: StreamEndReason?)
    /// `stage` ended the stream.
    case streamClosed(stage: String, reason: StreamEndReason)
}

/// Receives per-stage timings and outcomes, e.g. to feed metrics.
public protocol PipelineObserver: Sendable {
    func stageFinished(stage: String, duration: Duration, outcome: StageOutcome)
    func rejectedBeforePipeline(_ rejection: Rejection)
}

extension PipelineObserver {
    public func rejectedBeforePipeline(_ rejection: Rejection) {}
}

extension PipelineResult {
    /// Whether the frame went on to the viewers.
    public var taken: Bool { if case .delivered = self { true } else { false } }

    /// Why it did not, in a word a client can act on (a stage's drop reason,
    /// a rejection's code, or the reason the stream ends); nil when taken.
    public var reasonCode: String? {
        switch self {
        case .delivered: nil
        case .dropped(_, let reason): reason
        case .rejected(let rejection, _): rejection.code
        case .streamClosed(_, let reason): reason.rawValue
        }
    }
}
