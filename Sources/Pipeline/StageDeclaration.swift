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

    public init(name: String, summary: String, details: String = "", parameters: [any AnyParameter] = [], isSink: Bool = false) {
        self.name = name
        self.summary = summary
        self.details = details
        self.parameters = parameters.map(\.spec)
        self.isSink = isSink
    }

    public func parameter(named name: String) -> ParameterSpec? {
        parameters.first { $0.name == name }
    }
}
