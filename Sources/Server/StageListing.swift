import Pipeline

/// Renders stage declarations for people (text, the README's Markdown
/// table) and tools (JSON). The README table is checked against
/// `markdown(_:)` by a test, so the docs cannot drift from the code.
public enum StageListing {
    public static func text(_ registry: StageRegistry) -> String {
        var out: [String] = []
        for stage in registry.stages.map(\.declaration) {
            out.append("\(stage.name)\(stage.isSink ? " (sink)" : "") — \(stage.summary)")
            if !stage.details.isEmpty { out.append("    \(stage.details)") }
            if stage.parameters.isEmpty { out.append("    (no parameters)") }
            for p in stage.parameters {
                out.append("    \(p.name): \(p.typeDescription), \(defaultText(p))")
                out.append("        \(p.help)")
            }
            out.append("")
        }
        if !registry.policies.isEmpty {
            out.append("Delivery policies (pipelines.json \"delivery\": {\"policy\": NAME, …}):")
            out.append("")
        }
        for policy in registry.policies.map(\.declaration) {
            out.append("\(policy.name) (delivery policy) — \(policy.summary)")
            if !policy.details.isEmpty { out.append("    \(policy.details)") }
            for p in policy.parameters {
                out.append("    \(p.name): \(p.typeDescription), \(defaultText(p))")
                out.append("        \(p.help)")
            }
            out.append("")
        }
        return out.joined(separator: "\n")
    }

    /// The README's table of delivery policies.
    public static func policiesMarkdown(_ registry: StageRegistry) -> String {
        var rows = ["| policy | what it does | parameter | type | default | meaning |", "|---|---|---|---|---|---|"]
        for policy in registry.policies.map(\.declaration) {
            let what = escape(policy.summary + (policy.details.isEmpty ? "" : ". " + policy.details))
            for (i, p) in policy.parameters.enumerated() {
                rows.append("| \(i == 0 ? "`\(policy.name)`" : "") | \(i == 0 ? what : "") | `\(p.name)` | \(escape(p.typeDescription)) | \(escape(defaultText(p))) | \(escape(p.help)) |")
            }
        }
        return rows.joined(separator: "\n")
    }

    public static func markdown(_ registry: StageRegistry) -> String {
        var rows = ["| stage | what it does | parameter | type | default | meaning |", "|---|---|---|---|---|---|"]
        for stage in registry.stages.map(\.declaration) {
            let what = escape(stage.summary + (stage.details.isEmpty ? "" : ". " + stage.details))
            let name = "`\(stage.name)`"
            if stage.parameters.isEmpty {
                rows.append("| \(name) | \(what) | — | | | |")
            }
            for (i, p) in stage.parameters.enumerated() {
                rows.append("| \(i == 0 ? name : "") | \(i == 0 ? what : "") | `\(p.name)` | \(escape(p.typeDescription)) | \(escape(defaultText(p))) | \(escape(p.help)) |")
            }
        }
        return rows.joined(separator: "\n")
    }

    public static func json(_ registry: StageRegistry) -> String {
        let stages: [JSONValue] = registry.stages.map(\.declaration).map { stage in
            .object([
                ("name", .string(stage.name)),
                ("kind", .string("stage")),
                ("summary", .string(stage.summary)),
                ("details", .string(stage.details)),
                ("sink", .bool(stage.isSink)),
                ("parameters", .array(stage.parameters.map { p in
                    .object([
                        ("name", .string(p.name)),
                        ("type", .string(p.typeDescription)),
                        ("default", p.defaultValue ?? .null),
                        ("help", .string(p.help)),
                    ])
                })),
            ])
        }
        let policies: [JSONValue] = registry.policies.map(\.declaration).map { policy in
            .object([
                ("name", .string(policy.name)),
                ("kind", .string("delivery-policy")),
                ("summary", .string(policy.summary)),
                ("details", .string(policy.details)),
                ("parameters", .array(policy.parameters.map { p in
                    .object([("name", .string(p.name)), ("type", .string(p.typeDescription)), ("default", p.defaultValue ?? .null),
                             ("help", .string(p.help))])
                })),
            ])
        }
        return JSONValue.array(stages + policies).jsonText
    }

    static func defaultText(_ p: ParameterSpec) -> String {
        p.defaultValue.map { "default \($0.jsonText)" } ?? "optional"
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "|", with: "\\|")
    }
}
