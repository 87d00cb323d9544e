import ArgumentParser

/// Reads `framepipe serve`'s environment variables by one rule: a flag's
/// variable is `FRAMEPIPE_` and the flag in upper snake case
/// (`--max-viewers` → `FRAMEPIPE_MAX_VIEWERS`). A few variables had other
/// names before that rule; they are still read (`legacyNames`), after the
/// new one. A flag given on the command line wins over its variable.
struct ServeEnvironment {
    let variables: [String: String]

    /// Old names still accepted, by flag.
    static let legacyNames: [String: String] = [
        "allowed-origin": "FRAMEPIPE_ALLOWED_ORIGINS",
        "redis": "FRAMEPIPE_REDIS_URL",
        "redis-ca": "FRAMEPIPE_REDIS_CA_FILE",
    ]

    static func variable(for flag: String) -> String {
        "FRAMEPIPE_" + flag.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// `--flag (FRAMEPIPE_FLAG)`, the way an error names a setting.
    static func name(_ flag: String) -> String { "--\(flag) (\(variable(for: flag)))" }

    /// The raw value of `flag`'s variable (or its old name), with the name it came from.
    func raw(_ flag: String) -> (name: String, value: String)? {
        for name in [Self.variable(for: flag)] + (Self.legacyNames[flag].map { [$0] } ?? []) {
            if let value = variables[name] { return (name, value) }
        }
        return nil
    }

    /// The flag's value if given, else its variable's, parsed; a variable that does not parse is an error naming it.
    func value<T>(_ given: T?, _ flag: String, _ parse: (String) -> T?) throws -> T? {
        if let given { return given }
        guard let (name, text) = raw(flag) else { return nil }
        guard let parsed = parse(text) else { throw ValidationError("\(name)=\(text) is not a valid value for --\(flag)") }
        return parsed
    }

    func string(_ given: String?, _ flag: String) -> String? { given ?? raw(flag)?.value }

    /// A repeatable flag, or its variable as a comma-separated list.
    func list(_ given: [String], _ flag: String) -> [String] {
        if !given.isEmpty { return given }
        return raw(flag).map { $0.value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? []
    }

    func flag(_ given: Bool, _ flag: String) -> Bool { given || raw(flag)?.value == "1" || raw(flag)?.value == "true" }

    /// Seconds, as a `Duration`; they must be positive.
    func seconds(_ given: Double?, _ flag: String) throws -> Duration? {
        guard let s = try value(given, flag, Double.init) else { return nil }
        guard s > 0, s.isFinite else { throw ValidationError("\(Self.name(flag)) must be a positive number of seconds, got \(s)") }
        return .milliseconds(Int64(s * 1000))
    }

    /// A count, 0 meaning no limit.
    func count(_ given: Int?, _ flag: String) throws -> Int? {
        guard let v = try value(given, flag, Int.init) else { return nil }
        guard v >= 0 else { throw ValidationError("\(Self.name(flag)) must be 0 or more, got \(v)") }
        return v
    }

    /// A rate, 0 meaning no limit.
    func rate(_ given: Double?, _ flag: String) throws -> Double? {
        guard let v = try value(given, flag, Double.init) else { return nil }
        guard v >= 0, v.isFinite else { throw ValidationError("\(Self.name(flag)) must be 0 or more, got \(v)") }
        return v
    }
}
