/// Delivery policies are registered beside stages, by value, and named in
/// `pipelines.json`'s `"delivery"` object: `{"policy": "goodput", …}`.
extension StageRegistry {
    public mutating func register<P: DeliveryPolicy>(policy: P.Type) throws(StageRegistryError) {
        let declaration = P.declaration
        try checkNewName(declaration.name)
        policies.append(RegisteredPolicy(declaration: declaration) { parameters in
            let configuration = P.configuration(from: parameters)
            return { P(configuration: configuration) }
        })
    }

    public func lookupPolicy(_ name: String) -> RegisteredPolicy? {
        policies.first { $0.declaration.name == name }
    }
}

/// A registered delivery policy: its declaration and how to build one per viewer.
public struct RegisteredPolicy: Sendable {
    public let declaration: PolicyDeclaration
    let prepare: @Sendable (StageParameters) -> @Sendable () -> any DeliveryPolicy
}

/// The policy a config names, with its parameters, ready to make one
/// instance per viewer.
public struct ConfiguredPolicy: Sendable {
    public let declaration: PolicyDeclaration
    public let parameters: StageParameters
    public let makePolicy: @Sendable () -> any DeliveryPolicy

    public init(declaration: PolicyDeclaration, parameters: StageParameters, makePolicy: @escaping @Sendable () -> any DeliveryPolicy) {
        self.declaration = declaration
        self.parameters = parameters
        self.makePolicy = makePolicy
    }

    /// `goodput` with its defaults: what runs when the file says nothing.
    public static let standard = ConfiguredPolicy(declaration: GoodputPolicy.declaration, parameters: StageParameters()) { GoodputPolicy() }
}
