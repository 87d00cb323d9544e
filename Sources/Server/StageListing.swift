import Pipeline

/// Renders stage and delivery-policy declarations for people (text, the
/// Markdown tables in docs/pipelines.md) and tools (JSON). The tables are
/// checked against `markdown(_:)` and `policiesMarkdown(_:)` by a test, so
/// the docs cannot drift from the code.
public enum StageListing {
    public static func text(_ registry: StageRegistry) -> String {
        var out: [String] = []
        for stage in registry.stages.map(\.declaration) {
            out.append("\(stage.name)\(stage.isSink ? " (sink)" : "") — \(stage.summary)")
            out += details(stage.details, stage.parameters)
            if stage.parameters.isEmpty { out.append("    (no parameters)") }
            out.append("")
        }
        if !registry.policies.isEmpty {
            out.append("Delivery policies (pipelines.json \"delivery\": {\"policy\": NAME, …}):")
            out.append("")
        }
        for policy in registry.policies.map(\.declaration) {
            out.append("\(policy.name) (delivery policy) — \(policy.summary)")
            out += details(policy.details, policy.parameters)
            out.append("")
        }
        return out.joined(separator: "\n")
    }

    public static func markdown(_ registry: StageRegistry) -> String {
        table("stage", registry.stages.map(\.declaration).map { ($0.name, $0.summary, $0.details, $0.parameters) })
    }

    /// The table of delivery policies.
    public static func policiesMarkdown(_ registry: StageRegistry) -> String {
        table("policy", registry.policies.map(\.declaration).map { ($0.name, $0.summary, $0.details, $0.parameters) })
    }

    public static func json(_ registry: StageRegistry) -> String {
        let stages: [JSONValue] = registry.stages.map(\.declaration).map { stage in
            .object([
                ("name", .string(stage.name)),
                ("kind", .string("stage")),
                ("summary", .string(stage.summary)),
                ("details", .string(stage.details)),
                ("sink", .bool(stage.isSink)),
                ("parameters", parametersJSON(stage.parameters)),
            ])
        }
        let policies: [JSONValue] = registry.policies.map(\.declaration).map { policy in
            .object([
                ("name", .string(policy.name)),
                ("kind", .string("delivery-policy")),
                ("summary", .string(policy.summary)),
                ("details", .string(policy.details)),
                ("parameters", parametersJSON(policy.parameters)),
            ])
        }
        return JSONValue.array(stages + policies).jsonText
    }

    /// The indented details and parameter lines under a name in `text`.
    static func details(_ details: String, _ parameters: [ParameterSpec]) -> [String] {
        var lines = details.isEmpty ? [] : ["    \(details)"]
        for p in parameters {
            lines.append("    \(p.name): \(p.typeDescription), \(defaultText(p))")
            lines.append("        \(p.help)")
        }
        return lines
    }

    /// One row per parameter (or one saying there are none), the name and summary on the first.
    static func table(_ kind: String, _ entries: [(name: String, summary: String, details: String, parameters: [ParameterSpec])]) -> String {
        var rows = ["| \(kind) | what it does | parameter | type | default | meaning |", "|---|---|---|---|---|---|"]
        for entry in entries {
            let what = escape(entry.summary + (entry.details.isEmpty ? "" : ". " + entry.details))
            let name = "`\(entry.name)`"
            if entry.parameters.isEmpty {
                rows.append("| \(name) | \(what) | — | | | |")
            }
            for (i, p) in entry.parameters.enumerated() {
                rows.append("| \(i == 0 ? name : "") | \(i == 0 ? what : "") | `\(p.name)` | \(escape(p.typeDescription)) | \(escape(defaultText(p))) | \(escape(p.help)) |")
            }
        }
        return rows.joined(separator: "\n")
    }

    static func parametersJSON(_ parameters: [ParameterSpec]) -> JSONValue {
        .array(parameters.map { p in
            .object([("name", .string(p.name)), ("type", .string(p.typeDescription)), ("default", p.defaultValue ?? .null), ("help", .string(p.help))])
        })
    }

    static func defaultText(_ p: ParameterSpec) -> String {
        p.defaultValue.map { "default \($0.jsonText)" } ?? "optional"
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "|", with: "\\|")
    }
}
