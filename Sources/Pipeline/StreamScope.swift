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

    /// True when every stream `other` allows, this allows too (a refresh
    /// token must not widen what a socket may see).
    public func covers(_ other: StreamScope) -> Bool {
        other.patterns.allSatisfy { wanted in
            // A prefix pattern stands for every id starting with its prefix.
            let wantedPrefix = wanted.hasSuffix("*") ? wanted.dropLast() : nil
            return patterns.contains { mine in
                if mine == "*" { return true }
                if mine.hasSuffix("*") { return (wantedPrefix ?? Substring(wanted)).hasPrefix(mine.dropLast()) }
                return wantedPrefix == nil && mine == wanted
            }
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
