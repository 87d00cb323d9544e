/// Everything a person or a tool needs to know about a stage without running
/// it: the name used in `pipelines.json`, a one-line summary, what it does
/// to frames, and its parameters.
public struct StageDeclaration: Sendable {
    public let name: String
    public let summary: String
    /// What the stage does to a frame, when it drops or rejects, and what
    /// it keeps per stream.
    public let details: String
    public let parameters: [ParameterSpec]
    /// A sink delivers frames and must be the last stage of a pipeline.
    public let isSink: Bool
    /// In a cluster, frames from another node have been through that node's
    /// validators already; only stages that shape what viewers get (making
    /// a rendition, delivering) run on them again. Off by default.
    public let runsOnRelayedFrames: Bool
    /// Rules that span parameters (two that exclude each other, a list
    /// that must be in order), checked once every parameter is valid on
    /// its own. A problem's `subPath` starts with the parameter's name.
    public let crossCheck: (@Sendable (StageParameters) -> [ParameterSpec.Problem])?

    public init(name: String, summary: String, details: String = "", parameters: [any AnyParameter] = [], isSink: Bool = false,
                runsOnRelayedFrames: Bool = false, crossCheck: (@Sendable (StageParameters) -> [ParameterSpec.Problem])? = nil) {
        self.crossCheck = crossCheck
        self.name = name
        self.summary = summary
        self.details = details
        self.parameters = parameters.map(\.spec)
        self.isSink = isSink
        self.runsOnRelayedFrames = runsOnRelayedFrames || isSink
    }

    public func parameter(named name: String) -> ParameterSpec? {
        parameters.first { $0.name == name }
    }
}
