/// One entry of `"routes"`: streams whose id matches `match` run `pipeline`.
///
/// It exists so a ward's cameras can run a stricter chain than the rest
/// without a relay of their own. Patterns are spelt as token scopes are:
/// an exact stream id, a prefix ending in `*` (`P-ICU-*`), or `*` alone,
/// so one rule reads the same in a token and in the file.
public struct PipelineRoute: Sendable, Equatable {
    public let match: String
    public let pipeline: String

    public init(match: String, pipeline: String) {
        self.match = match
        self.pipeline = pipeline
    }

    public func matches(_ streamID: String) -> Bool {
        if let prefix = prefix { return streamID.hasPrefix(prefix) }
        return streamID == match
    }

    /// True when every stream `other` matches, this matches too: a route
    /// after one that covers it can never be chosen.
    public func covers(_ other: PipelineRoute) -> Bool {
        guard let prefix else { return other.prefix == nil && other.match == match }
        return (other.prefix ?? Substring(other.match)).hasPrefix(prefix)
    }

    /// Why `pattern` is not one, or nil when it is.
    public static func problem(with pattern: String) -> String? {
        if pattern == "*" { return nil }
        let id = pattern.hasSuffix("*") ? pattern.dropLast() : Substring(pattern)
        if id.contains("*") { return "\"*\" may only end a pattern (\"P-ICU-*\"); a pattern is a stream id, a prefix ending in *, or * alone" }
        if StreamID.isValid(id) { return nil }
        return "not a stream id or prefix: \(StreamID.rule)"
    }

    private var prefix: Substring? { match.hasSuffix("*") ? match.dropLast() : nil }
}
