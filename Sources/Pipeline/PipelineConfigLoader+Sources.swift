import Foundation

extension PipelineConfigLoader {
    static let sourceFields = ["stream_id", "url", "credentials", "stallTimeout", "pollInterval", "retryMin", "retryMax"]

    /// `"sources": [{"stream_id": "bed-12", "url": "http://…/video.cgi", "credentials": {"file": "…"}}, …]`:
    /// each id valid and named once, each URL http(s) without a password in
    /// it, each credential readable now, each time a sane number of seconds.
    func checkSources(_ value: JSONValue, environment: [String: String], problems: inout [ConfigProblem]) -> [PulledSource] {
        guard case .array(let items) = value else {
            problems.append(.init(path: "sources", reason: "expected an array such as [{\"stream_id\": \"bed-12\", \"url\": \"http://camera/video.mjpg\"}], got \(value.typeName)"))
            return []
        }
        var sources: [PulledSource] = []
        var seen: [String: Int] = [:]
        for (index, item) in items.enumerated() {
            let path = "sources[\(index)]"
            guard case .object(let members) = item else {
                problems.append(.init(path: path, reason: "expected an object with \"stream_id\" and \"url\", got \(item.typeName)"))
                continue
            }
            let before = problems.count
            for (key, _) in members where !Self.sourceFields.contains(key) {
                problems.append(.init(path: "\(path).\(key)", reason: "unknown field" + Suggestion.didYouMean(key, among: Self.sourceFields)))
            }
            var streamID = ""
            switch item["stream_id"] {
            case nil: problems.append(.init(path: "\(path).stream_id", reason: "missing; the stream the camera's pictures are published as"))
            case .string(let id)?:
                if !StreamID.isValid(Substring(id)) {
                    problems.append(.init(path: "\(path).stream_id", reason: "\"\(id.prefix(80))\": \(StreamID.rule)"))
                } else if let earlier = seen[id] {
                    problems.append(.init(path: "\(path).stream_id", reason: "\"\(id)\" is already pulled by sources[\(earlier)]; a stream has one camera"))
                } else {
                    seen[id] = index
                    streamID = id
                }
            case let other?: problems.append(.init(path: "\(path).stream_id", reason: "expected a stream id (string), got \(other.typeName)"))
            }
            var url = ""
            switch item["url"] {
            case nil: problems.append(.init(path: "\(path).url", reason: "missing; the camera's MJPEG or JPEG address, http:// or https://"))
            case .string(let text)?:
                switch Self.sourceURLProblem(text) {
                case nil: url = text
                case let problem?: problems.append(.init(path: "\(path).url", reason: problem))
                }
            case let other?: problems.append(.init(path: "\(path).url", reason: "expected a URL (string), got \(other.typeName)"))
            }
            let credentials = item["credentials"].flatMap { checkCredentials($0, path: "\(path).credentials", environment: environment, problems: &problems) }
            func seconds(_ key: String, default fallback: Double, within range: ClosedRange<Double>) -> Duration {
                guard let given = item[key] else { return .milliseconds(Int64(fallback * 1000)) }
                guard case .number(let n) = given, range.contains(n) else {
                    problems.append(.init(path: "\(path).\(key)", reason: "expected seconds from \(range.lowerBound) to \(range.upperBound), got \(given.jsonText)"))
                    return .zero
                }
                return .milliseconds(Int64((n * 1000).rounded()))
            }
            let stallTimeout = seconds("stallTimeout", default: 5, within: 0.1...300)
            let pollInterval = seconds("pollInterval", default: 1, within: 0.03...3600)
            let retryMin = seconds("retryMin", default: 1, within: 0.01...600)
            let retryMax = seconds("retryMax", default: 30, within: 0.01...3600)
            if problems.count == before, retryMax < retryMin {
                problems.append(.init(path: "\(path).retryMax", reason: "shorter than retryMin (\(retryMin.seconds) s)"))
            }
            guard problems.count == before else { continue }
            sources.append(PulledSource(streamID: streamID, url: url, credentials: credentials, stallTimeout: stallTimeout,
                                        pollInterval: pollInterval, retryMin: retryMin, retryMax: retryMax))
        }
        return sources
    }

    /// `{"file": "/etc/framepipe/bed-12.secret"}` or `{"env": "BED12_CAMERA"}`, holding `user:password`.
    func checkCredentials(_ value: JSONValue, path: String, environment: [String: String], problems: inout [ConfigProblem]) -> PulledSource.Credentials? {
        guard case .object(let members) = value, members.count == 1, let (key, given) = members.first, key == "file" || key == "env" else {
            problems.append(.init(path: path, reason: "expected {\"file\": \"/path/to/secret\"} or {\"env\": \"VARIABLE\"}, holding user:password; got \(value.jsonText.prefix(80))"))
            return nil
        }
        guard case .string(let name) = given, !name.isEmpty else {
            problems.append(.init(path: "\(path).\(key)", reason: "expected a \(key == "file" ? "path" : "variable name") (string), got \(given.jsonText.prefix(80))"))
            return nil
        }
        let credentials: PulledSource.Credentials = key == "file" ? .file(name) : .environment(name)
        if case .failure(let unreadable) = credentials.read(environment: environment) {
            problems.append(.init(path: "\(path).\(key)", reason: unreadable.reason))
            return nil
        }
        return credentials
    }

    /// Why `text` cannot be a camera's address, or nil.
    static func sourceURLProblem(_ text: String) -> String? {
        guard let parts = URLComponents(string: text), let scheme = parts.scheme?.lowercased() else {
            return "\"\(text.prefix(80))\" is not a URL"
        }
        guard scheme == "http" || scheme == "https" else {
            return "\(scheme):// is not pulled; http:// and https:// (MJPEG or JPEG) are. An RTSP camera can be turned into MJPEG by ffmpeg: see docs/standard-clients.md"
        }
        guard let host = parts.host, !host.isEmpty else { return "\"\(text.prefix(80))\" names no host" }
        if parts.user != nil || parts.password != nil {
            return "credentials inside the URL would be logged and listed; put user:password in a file or variable and name it in \"credentials\""
        }
        return nil
    }
}
