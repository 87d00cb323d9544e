/// The declaration of one stage parameter: its name, JSON type, allowed
/// values, default and help text. One list of these per stage drives
/// validation, defaults, `framepipe stages` and the README table.
public struct ParameterSpec: Sendable {
    public enum Kind: Sendable {
        case integer(ClosedRange<Int>)
        case number(ClosedRange<Double>)
        case boolean
        case choice([String])
        /// A non-empty array of strings, each matching `allowed` when given.
        case stringList(allowed: [String]?)
        /// A non-empty array of objects, each checked against `fields`
        /// (a rendition ladder's steps); problems name the entry and field.
        /// A field with no default must be given in every entry.
        case objectList(fields: [ParameterSpec])
    }

    public let name: String
    public let kind: Kind
    /// Used when the parameter is absent; nil means optional with no default
    /// (absent = feature off, e.g. no maximum width).
    public let defaultValue: JSONValue?
    public let help: String

    /// "integer 1…64000000", "\"header\" | \"full\"", ... for listings.
    public var typeDescription: String {
        switch kind {
        case .integer(let r): return "integer \(r.lowerBound)…\(r.upperBound)"
        case .number(let r): return "number \(JSONValue.number(r.lowerBound).jsonText)…\(JSONValue.number(r.upperBound).jsonText)"
        case .boolean: return "boolean"
        case .choice(let options): return options.map { "\"\($0)\"" }.joined(separator: " | ")
        case .stringList(let allowed):
            guard let allowed else { return "array of strings" }
            return "array of " + allowed.map { "\"\($0)\"" }.joined(separator: " | ")
        case .objectList(let fields):
            return "array of {" + fields.map { "\($0.name): \($0.typeDescription)" }.joined(separator: ", ") + "}"
        }
    }

    /// What is wrong with a value: where inside it (`[1]` for a list's
    /// second entry, empty for the value itself) and why, phrased for a
    /// person reading their config. The loader appends `subPath` to the
    /// parameter's JSON path.
    public struct Problem: Sendable, Equatable {
        public let subPath: String
        public let reason: String

        public init(_ reason: String, at subPath: String = "") {
            self.subPath = subPath
            self.reason = reason
        }
    }

    /// Checks a JSON value against this declaration; nil when it is valid.
    public func problem(with value: JSONValue) -> Problem? {
        switch kind {
        case .integer(let range):
            guard case .number(let n) = value else { return Problem("expected an integer, got \(value.typeName) \(value.jsonText)") }
            guard n == n.rounded(), abs(n) < 9e15 else { return Problem("expected an integer, got \(value.jsonText)") }
            guard range.contains(Int(n)) else {
                return Problem("must be between \(range.lowerBound) and \(range.upperBound), got \(value.jsonText)")
            }
        case .number(let range):
            guard case .number(let n) = value else { return Problem("expected a number, got \(value.typeName) \(value.jsonText)") }
            guard range.contains(n) else {
                return Problem("must be between \(JSONValue.number(range.lowerBound).jsonText) and \(JSONValue.number(range.upperBound).jsonText), got \(value.jsonText)")
            }
        case .boolean:
            guard case .bool = value else { return Problem("expected true or false, got \(value.typeName) \(value.jsonText)") }
        case .choice(let options):
            guard case .string(let s) = value, options.contains(s) else {
                return Problem("expected \(Self.alternatives(options)), got \(value.jsonText)")
            }
        case .stringList(let allowed):
            guard case .array(let items) = value else { return Problem("expected an array of strings, got \(value.typeName) \(value.jsonText)") }
            guard !items.isEmpty else { return Problem("expected at least one entry, got []") }
            for (i, item) in items.enumerated() {
                guard case .string(let s) = item else { return Problem("expected a string, got \(item.typeName) \(item.jsonText)", at: "[\(i)]") }
                if let allowed, !allowed.contains(s) { return Problem("expected \(Self.alternatives(allowed)), got \(item.jsonText)", at: "[\(i)]") }
            }
        case .objectList(let fields):
            guard case .array(let items) = value else { return Problem("expected an array of objects, got \(value.typeName) \(value.jsonText)") }
            guard !items.isEmpty else { return Problem("expected at least one entry, got []") }
            for (i, item) in items.enumerated() {
                guard case .object(let members) = item else { return Problem("expected an object, got \(item.typeName) \(item.jsonText)", at: "[\(i)]") }
                for (key, member) in members {
                    guard let field = fields.first(where: { $0.name == key }) else {
                        let names = fields.map(\.name)
                        let hint = Suggestion.didYouMean(key, among: names)
                        return Problem("unknown field" + (hint.isEmpty ? "; known: \(names.joined(separator: ", "))" : hint), at: "[\(i)].\(key)")
                    }
                    if let problem = field.problem(with: member) { return Problem(problem.reason, at: "[\(i)].\(key)\(problem.subPath)") }
                }
                for field in fields where field.defaultValue == nil && members.first(where: { $0.key == field.name }) == nil {
                    return Problem("missing \"\(field.name)\" (\(field.help))", at: "[\(i)]")
                }
            }
        }
        return nil
    }

    /// `"a" or "b"` / `one of "a", "b", "c"`.
    static func alternatives(_ options: [String]) -> String {
        let quoted = options.map { "\"\($0)\"" }
        if quoted.count == 2 { return "\(quoted[0]) or \(quoted[1])" }
        if quoted.count == 1 { return quoted[0] }
        return "one of " + quoted.joined(separator: ", ")
    }
}

/// A parameter a stage can read back with its Swift type.
///
/// ```
/// static let maxBytes = Parameter.integer("maxBytes", default: 4_000_000, in: 1...64_000_000, help: "…")
/// …
/// Configuration(maxBytes: parameters[maxBytes])
/// ```
public struct Parameter<Value: Sendable>: Sendable, AnyParameter {
    public let spec: ParameterSpec
    let read: @Sendable (JSONValue?) -> Value
}

/// Type-erased view used by `StageDeclaration`.
public protocol AnyParameter: Sendable {
    var spec: ParameterSpec { get }
}

extension Parameter where Value == Int {
    public static func integer(_ name: String, default value: Int, in range: ClosedRange<Int>, help: String) -> Self {
        Self(spec: .init(name: name, kind: .integer(range), defaultValue: .number(Double(value)), help: help)) { json in
            json?.numberValue.map { Int($0) } ?? value
        }
    }
}

extension Parameter where Value == Int? {
    /// An integer that may be left out; absent reads as nil.
    public static func optionalInteger(_ name: String, in range: ClosedRange<Int>, help: String) -> Self {
        Self(spec: .init(name: name, kind: .integer(range), defaultValue: nil, help: help)) { json in
            json?.numberValue.map { Int($0) }
        }
    }
}

extension Parameter where Value == Double {
    public static func number(_ name: String, default value: Double, in range: ClosedRange<Double>, help: String) -> Self {
        Self(spec: .init(name: name, kind: .number(range), defaultValue: .number(value), help: help)) { json in
            json?.numberValue ?? value
        }
    }
}

extension Parameter where Value == Bool {
    public static func boolean(_ name: String, default value: Bool, help: String) -> Self {
        Self(spec: .init(name: name, kind: .boolean, defaultValue: .bool(value), help: help)) { json in
            if case .bool(let b) = json { return b }
            return value
        }
    }
}

extension Parameter where Value == String {
    public static func choice(_ name: String, _ options: [String], default value: String, help: String) -> Self {
        precondition(options.contains(value), "default \(value) of \(name) is not among its options")
        return Self(spec: .init(name: name, kind: .choice(options), defaultValue: .string(value), help: help)) { json in
            json?.stringValue ?? value
        }
    }
}

extension Parameter where Value == [String] {
    public static func stringList(_ name: String, default value: [String], allowed: [String]? = nil, help: String) -> Self {
        Self(spec: .init(name: name, kind: .stringList(allowed: allowed), defaultValue: .array(value.map(JSONValue.string)), help: help)) { json in
            guard case .array(let items) = json else { return value }
            return items.compactMap(\.stringValue)
        }
    }
}

extension Parameter where Value == [StageParameters]? {
    /// An array of objects whose fields are `fields`; absent reads as nil.
    /// Each entry reads back like a stage's parameters: `entry[field]`.
    public static func objectList(_ name: String, fields: [any AnyParameter], help: String) -> Self {
        Self(spec: .init(name: name, kind: .objectList(fields: fields.map(\.spec)), defaultValue: nil, help: help)) { json in
            guard case .array(let items) = json else { return nil }
            return items.compactMap { item in
                guard case .object(let members) = item else { return nil }
                return StageParameters(Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a }))
            }
        }
    }
}

/// A stage's parameters after validation, defaults not yet applied to
/// absent ones (each `Parameter` knows its own default).
public struct StageParameters: Sendable {
    /// The members of the stage's JSON object, minus `"stage"`.
    public let values: [String: JSONValue]

    public init(_ values: [String: JSONValue] = [:]) {
        self.values = values
    }

    public subscript<Value>(parameter: Parameter<Value>) -> Value {
        parameter.read(values[parameter.spec.name])
    }
}
