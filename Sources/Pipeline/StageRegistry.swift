/// The stages a server knows by name.
///
/// Registration is explicit and by value, like `LoggingSystem.bootstrap` or
/// Hummingbird's `router.add`: a user's package takes `StageRegistry.builtIn`,
/// registers its own types, and passes the registry to the server and CLI.
/// A name can be registered once; a second registration fails.
public struct StageRegistry: Sendable {
    public private(set) var stages: [RegisteredStage] = []
    /// Delivery policies (`register(policy:)`).
    public internal(set) var policies: [RegisteredPolicy] = []

    public init() {}

    public mutating func register<S: Stage>(_ stage: S.Type) throws(StageRegistryError) {
        let declaration = S.declaration
        try checkNewName(declaration.name)
        stages.append(RegisteredStage(declaration: declaration) { parameters in
            let configuration = S.configuration(from: parameters)
            return { context in S(configuration: configuration, context: context) }
        })
    }

    /// A stage's or policy's name: ASCII letters, digits, '-' or '_', not yet taken by either.
    func checkNewName(_ name: String) throws(StageRegistryError) {
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
        else { throw .invalidName(name) }
        guard lookup(name) == nil, policies.first(where: { $0.declaration.name == name }) == nil else { throw .duplicateName(name) }
    }

    public func lookup(_ name: String) -> RegisteredStage? {
        stages.first { $0.declaration.name == name }
    }

    public var names: [String] { stages.map(\.declaration.name) }
}

/// A registered stage: its declaration and how to build instances.
public struct RegisteredStage: Sendable {
    public let declaration: StageDeclaration
    /// Builds the shared configuration once, returning the per-stream factory.
    let prepare: @Sendable (StageParameters) -> @Sendable (StageContext) -> any Stage
}

public enum StageRegistryError: Error, Equatable, CustomStringConvertible {
    case duplicateName(String)
    case invalidName(String)

    public var description: String {
        switch self {
        case .duplicateName(let name): return "a stage or policy named \"\(name)\" is already registered"
        case .invalidName(let name): return "stage or policy name \"\(name)\" must be non-empty ASCII letters, digits, '-' or '_'"
        }
    }
}
