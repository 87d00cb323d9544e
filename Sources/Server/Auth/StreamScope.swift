import WireProtocol
/// The stream ids a token covers: exact ids, prefixes ending in `*`
/// (`P-DHE-*`), or `*` for every stream.
///
/// It exists so one rule decides what a token may publish or watch, the
/// same at the upgrade, in the viewer hub and in the JSON API.
public struct StreamScope: Sendable, Equatable, CustomStringConvertible {
    public let patterns: [String]

    public static let all = StreamScope(["*"])

    public init(_ patterns: [String]) {
        self.patterns = patterns
    }

    public var coversAll: Bool { patterns.contains("*") }

    public func allows(_ streamID: String) -> Bool {
        patterns.contains { pattern in
            if pattern.hasSuffix("*") { return streamID.hasPrefix(pattern.dropLast()) }
            return pattern == streamID
        }
    }

    /// A pattern is a stream id, optionally ending in `*`, or `*` alone.
    public static func isValidPattern(_ pattern: String) -> Bool {
        if pattern == "*" { return true }
        let id = pattern.hasSuffix("*") ? pattern.dropLast() : Substring(pattern)
        return StreamID.isValid(id)
    }

    public var description: String { patterns.joined(separator: ",") }
}
