import Foundation

/// Turns `pipelines.json` text into a `PipelineConfig`, or reports every
/// problem at once with its JSON path, as `benthos lint` does.
///
/// The file is parsed into a `JSONValue` tree and checked against the stage
/// declarations before any typed configuration is built; a typed
/// `Decodable` pass would stop at the first error and name neither the
/// field nor the file.
public struct PipelineConfigLoader: Sendable {
    public let registry: StageRegistry
    /// Where `"sources"` credentials named `{"env": …}` are looked up.
    public let environment: [String: String]

    public init(registry: StageRegistry, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.registry = registry
        self.environment = environment
    }

    public func load(text: String, source: String = "pipelines.json") throws(ConfigError) -> PipelineConfig {
        let root: JSONValue
        do {
            root = try JSONParser.parse(text)
        } catch {
            throw ConfigError(source: source, problems: [
                ConfigProblem(path: "line \(error.line), column \(error.column)", reason: error.reason)
            ])
        }
        var problems: [ConfigProblem] = []
        let config = check(root: root, problems: &problems)
        if let config, problems.isEmpty { return config }
        throw ConfigError(source: source, problems: problems)
    }

    func check(root: JSONValue, problems: inout [ConfigProblem]) -> PipelineConfig? {
        guard case .object(let members) = root else {
            problems.append(.init(path: "(root)", reason: "expected an object with \"default\" and \"pipelines\", got \(root.typeName)"))
            return nil
        }
        let topLevel = ["default", "pipelines", "delivery", "routes", "sources"]
        for (key, _) in members where !topLevel.contains(key) {
            problems.append(.init(path: key, reason: "unknown field" + Suggestion.didYouMean(key, among: topLevel)))
        }
        var delivery: ConfiguredPolicy? = .standard
        if let given = root["delivery"] { delivery = checkDelivery(given, problems: &problems) }

        var pipelines: [PipelineDefinition] = []
        var names: [String] = []
        switch root["pipelines"] {
        case nil:
            problems.append(.init(path: "pipelines", reason: "missing; expected an object of named pipelines"))
        case .object(let entries)?:
            if entries.isEmpty { problems.append(.init(path: "pipelines", reason: "no pipelines defined")) }
            for (name, value) in entries {
                names.append(name)
                if let pipeline = checkPipeline(name: name, value: value, problems: &problems) {
                    pipelines.append(pipeline)
                }
            }
        case let other?:
            problems.append(.init(path: "pipelines", reason: "expected an object of named pipelines, got \(other.typeName)"))
        }

        var defaultName = ""
        switch root["default"] {
        case nil:
            problems.append(.init(path: "default", reason: "missing; name the pipeline to run when --pipeline is not given"))
        case .string(let name)?:
            defaultName = name
            if !names.isEmpty, !names.contains(name) {
                problems.append(.init(path: "default", reason: "no pipeline named \"\(name)\"" + Suggestion.didYouMean(name, among: names)))
            }
        case let other?:
            problems.append(.init(path: "default", reason: "expected a pipeline name (string), got \(other.typeName)"))
        }
        let routes = root["routes"].map { checkRoutes($0, pipelines: names, problems: &problems) } ?? []
        let sources = root["sources"].map { checkSources($0, environment: environment, problems: &problems) } ?? []
        return problems.isEmpty
            ? PipelineConfig(defaultPipeline: defaultName, pipelines: pipelines, delivery: delivery ?? .standard, routes: routes,
                             sources: sources) : nil
    }

    /// `"routes": [{"match": "P-ICU-*", "pipeline": "strict"}, …]`: each
    /// pattern well formed, each pipeline defined, and none hidden behind
    /// an earlier route that already takes every stream it would.
    func checkRoutes(_ value: JSONValue, pipelines names: [String], problems: inout [ConfigProblem]) -> [PipelineRoute] {
        guard case .array(let items) = value else {
            problems.append(.init(path: "routes", reason: "expected an array such as [{\"match\": \"P-ICU-*\", \"pipeline\": \"strict\"}], got \(value.typeName)"))
            return []
        }
        var routes: [(index: Int, route: PipelineRoute)] = []
        for (index, item) in items.enumerated() {
            let path = "routes[\(index)]"
            guard case .object(let members) = item else {
                problems.append(.init(path: path, reason: "expected an object with \"match\" and \"pipeline\", got \(item.typeName)"))
                continue
            }
            for (key, _) in members where key != "match" && key != "pipeline" {
                problems.append(.init(path: "\(path).\(key)", reason: "unknown field" + Suggestion.didYouMean(key, among: ["match", "pipeline"])))
            }
            var match: String?
            switch item["match"] {
            case nil: problems.append(.init(path: "\(path).match", reason: "missing; a stream id, a prefix ending in * (\"P-ICU-*\"), or *"))
            case .string(let pattern)?:
                if let problem = PipelineRoute.problem(with: pattern) {
                    problems.append(.init(path: "\(path).match", reason: "\"\(pattern)\": \(problem)"))
                } else {
                    match = pattern
                }
            case let other?: problems.append(.init(path: "\(path).match", reason: "expected a pattern (string), got \(other.typeName)"))
            }
            var pipeline: String?
            switch item["pipeline"] {
            case nil: problems.append(.init(path: "\(path).pipeline", reason: "missing; name the pipeline these streams run"))
            case .string(let name)?:
                if names.contains(name) {
                    pipeline = name
                } else {
                    problems.append(.init(path: "\(path).pipeline", reason: "no pipeline named \"\(name)\"" + Suggestion.didYouMean(name, among: names)))
                }
            case let other?: problems.append(.init(path: "\(path).pipeline", reason: "expected a pipeline name (string), got \(other.typeName)"))
            }
            guard let match, let pipeline else { continue }
            let route = PipelineRoute(match: match, pipeline: pipeline)
            if let earlier = routes.first(where: { $0.route.covers(route) }) {
                problems.append(.init(path: "\(path).match", reason:
                    "never matches: routes[\(earlier.index)] (\"\(earlier.route.match)\") already takes every stream \"\(match)\" would; put the narrower route first"))
            }
            routes.append((index, route))
        }
        return routes.map(\.route)
    }

    /// `"delivery": {"policy": "goodput", "headroom": 1.5}`: the policy by
    /// name, its parameters checked against its declaration.
    func checkDelivery(_ value: JSONValue, problems: inout [ConfigProblem]) -> ConfiguredPolicy? {
        guard case .object(let members) = value else {
            problems.append(.init(path: "delivery", reason: "expected an object such as {\"policy\": \"goodput\"}, got \(value.typeName)"))
            return nil
        }
        let known = registry.policies.map(\.declaration.name)
        let registered: RegisteredPolicy
        switch value["policy"] {
        case nil:
            guard let standard = registry.lookupPolicy(GoodputPolicy.declaration.name) ?? registry.policies.first else {
                problems.append(.init(path: "delivery.policy", reason: "missing, and no delivery policy is registered"))
                return nil
            }
            registered = standard
        case .string(let name)?:
            guard let found = registry.lookupPolicy(name) else {
                let list = known.isEmpty ? "none is registered" : "known: \(known.joined(separator: ", "))"
                let hint = Suggestion.didYouMean(name, among: known)
                problems.append(.init(path: "delivery.policy", reason: "unknown delivery policy \"\(name)\"" + (hint.isEmpty ? "; \(list)" : hint)))
                return nil
            }
            registered = found
        case let other?:
            problems.append(.init(path: "delivery.policy", reason: "expected a policy name (string), got \(other.typeName)"))
            return nil
        }
        let declaration = registered.declaration
        guard let parameters = checkParameters(members, skipping: "policy", of: "policy \"\(declaration.name)\"", named: declaration.name,
                                               specs: declaration.parameters, path: "delivery", problems: &problems)
        else { return nil }
        return ConfiguredPolicy(declaration: declaration, parameters: parameters, makePolicy: registered.prepare(parameters))
    }

    func checkPipeline(name: String, value: JSONValue, problems: inout [ConfigProblem]) -> PipelineDefinition? {
        let path = "pipelines.\(name)"
        let before = problems.count
        guard case .object(let members) = value else {
            problems.append(.init(path: path, reason: "expected an object with \"stages\", got \(value.typeName)"))
            return nil
        }
        for (key, _) in members where key != "description" && key != "stages" {
            problems.append(.init(path: "\(path).\(key)", reason: "unknown field" + Suggestion.didYouMean(key, among: ["description", "stages"])))
        }
        var description = ""
        if let d = value["description"] {
            if case .string(let s) = d { description = s } else {
                problems.append(.init(path: "\(path).description", reason: "expected a string, got \(d.typeName)"))
            }
        }
        guard let stagesValue = value["stages"] else {
            problems.append(.init(path: "\(path).stages", reason: "missing; expected an array of stages"))
            return nil
        }
        guard case .array(let items) = stagesValue else {
            problems.append(.init(path: "\(path).stages", reason: "expected an array of stages, got \(stagesValue.typeName)"))
            return nil
        }
        if items.isEmpty {
            problems.append(.init(path: "\(path).stages", reason: "empty; a pipeline needs at least a sink such as \"fan-out\""))
        }
        var stages: [ConfiguredStage] = []
        for (index, item) in items.enumerated() {
            let stagePath = "\(path).stages[\(index)]"
            guard let stage = checkStage(item, path: stagePath, problems: &problems) else { continue }
            if stage.declaration.isSink, index != items.count - 1 {
                problems.append(.init(path: stagePath, reason: "sink \"\(stage.declaration.name)\" must be the last stage; \(items.count - 1 - index) stage(s) follow it"))
            }
            if !stage.declaration.isSink, index == items.count - 1 {
                let sinks = registry.stages.filter(\.declaration.isSink).map { "\"\($0.declaration.name)\"" }.joined(separator: " or ")
                problems.append(.init(path: stagePath, reason: "the last stage must be a sink (\(sinks)), or no frame reaches a viewer; got \"\(stage.declaration.name)\""))
            }
            stages.append(stage)
        }
        guard problems.count == before else { return nil }
        return PipelineDefinition(name: name, description: description, stages: stages)
    }

    func checkStage(_ value: JSONValue, path: String, problems: inout [ConfigProblem]) -> ConfiguredStage? {
        guard case .object(let members) = value else {
            problems.append(.init(path: path, reason: "expected an object such as {\"stage\": \"fan-out\"}, got \(value.typeName)"))
            return nil
        }
        guard let nameValue = value["stage"] else {
            problems.append(.init(path: "\(path).stage", reason: "missing; name the stage type (run `framepipe stages` for the list)"))
            return nil
        }
        guard case .string(let name) = nameValue else {
            problems.append(.init(path: "\(path).stage", reason: "expected a stage name (string), got \(nameValue.typeName)"))
            return nil
        }
        guard let registered = registry.lookup(name) else {
            problems.append(.init(path: "\(path).stage", reason: "unknown stage \"\(name)\"" + Suggestion.didYouMean(name, among: registry.names)))
            return nil
        }
        let declaration = registered.declaration
        let before = problems.count
        guard let parameters = checkParameters(members, skipping: "stage", of: "\"\(name)\"", named: name, specs: declaration.parameters,
                                               path: path, problems: &problems)
        else { return nil }
        for problem in declaration.crossCheck?(parameters) ?? [] {
            problems.append(.init(path: "\(path).\(problem.subPath)", reason: problem.reason))
        }
        guard problems.count == before else { return nil }
        return ConfiguredStage(declaration: declaration, parameters: parameters, makeInstance: registered.prepare(parameters))
    }
}

extension PipelineConfigLoader {
    /// Checks an object's members (but `skipping`, its name field) against
    /// the parameter declarations of a stage or policy; nil when any is wrong.
    func checkParameters(_ members: [(key: String, value: JSONValue)], skipping: String, of owner: String, named name: String,
                         specs: [ParameterSpec], path: String, problems: inout [ConfigProblem]) -> StageParameters? {
        let before = problems.count
        var values: [String: JSONValue] = [:]
        for (key, member) in members where key != skipping {
            guard let spec = specs.first(where: { $0.name == key }) else {
                let known = specs.map(\.name)
                let hint = Suggestion.didYouMean(key, among: known)
                let list = known.isEmpty ? "; \"\(name)\" takes no parameters" : hint.isEmpty ? "; known: \(known.joined(separator: ", "))" : hint
                problems.append(.init(path: "\(path).\(key)", reason: "unknown parameter of \(owner)\(list)"))
                continue
            }
            if let problem = spec.problem(with: member) {
                // A list's problem names its entry: `mimeTypes[1]: …`.
                problems.append(.init(path: "\(path).\(key)\(problem.subPath)", reason: problem.reason))
                continue
            }
            values[key] = member
        }
        return problems.count == before ? StageParameters(values) : nil
    }
}

/// "did you mean" hints for misspelt names.
enum Suggestion {
    static func didYouMean(_ word: String, among candidates: [String]) -> String {
        let scored = candidates.map { ($0, distance(word.lowercased(), $0.lowercased())) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(2, word.count / 3) else { return "" }
        return " (did you mean \"\(best.0)\"?)"
    }

    /// Levenshtein distance.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
