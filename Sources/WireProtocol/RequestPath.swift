/// A request target's path, accepted in exactly one spelling: the one the
/// relay's routes are written in.
///
/// It exists because protection once followed path strings while the router
/// normalised paths its own way, so `//api/streams` reached a protected
/// handler without a token. Both the HTTP router (through
/// `CanonicalPathMiddleware`) and the WebSocket upgrade gate parse every
/// target with this one type and refuse anything that is not canonical,
/// so there is no second spelling for any route to forget:
///
/// - the target is origin-form (`/…`, optionally `?query`); absolute-form,
///   `*` and an empty target are refused;
/// - no empty segment (`//`, a trailing `/` except on `/` itself), no `.` or
///   `..` segment;
/// - only the path characters of RFC 3986 that need no escaping; in
///   particular no `%` (no framepipe route needs percent-encoding, and a
///   decoded `%2F` is where path checks usually go wrong), no NUL or other
///   control byte, no space, no `\`, nothing outside ASCII;
/// - at most `maxLength` bytes of path.
///
/// Case is kept: routes match case-sensitively, so `/API/streams` is simply
/// not found.
public struct RequestPath: Sendable, Equatable, CustomStringConvertible {
    /// The segments between slashes; empty for `/`.
    public let segments: [Substring]
    /// The raw query after `?`, if any (not validated here: each route parses its own).
    public let query: Substring?

    /// Far above any real route (the longest is about 90 bytes), far below what could cost anything.
    public static let maxLength = 1024

    /// Why a target was refused, said so a client author can fix it.
    public enum Problem: Error, Sendable, Equatable, CustomStringConvertible {
        case notOriginForm
        case tooLong(Int)
        case forbiddenByte(UInt8, offset: Int)
        case emptySegment
        case dotSegment

        public var description: String {
            switch self {
            case .notOriginForm: "the request target must be a path starting with /"
            case .tooLong(let length): "the path is \(length) bytes; at most \(RequestPath.maxLength) are accepted"
            case .forbiddenByte(let byte, let offset):
                byte == UInt8(ascii: "%")
                    ? "the path has a percent-encoded character at byte \(offset); framepipe paths never need one"
                    : "the path has a byte that is not allowed (0x\(String(byte, radix: 16, uppercase: true))) at byte \(offset)"
            case .emptySegment: "the path has an empty segment (// or a trailing /)"
            case .dotSegment: "the path has a . or .. segment"
            }
        }
    }

    /// Parses a request target as the client sent it (path and query, undecoded).
    public init(parsing target: String) throws(Problem) {
        let utf8 = target.utf8
        let queryStart = utf8.firstIndex(of: UInt8(ascii: "?"))
        let pathBytes = utf8[..<(queryStart ?? utf8.endIndex)]
        guard pathBytes.first == UInt8(ascii: "/") else { throw .notOriginForm }
        guard pathBytes.count <= Self.maxLength else { throw .tooLong(pathBytes.count) }
        for (offset, byte) in pathBytes.enumerated() where !Self.isPathByte(byte) {
            throw .forbiddenByte(byte, offset: offset)
        }
        let path = Substring(target)[..<(queryStart ?? target.endIndex)]
        var segments: [Substring] = []
        if path != "/" {
            for segment in path.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
                if segment.isEmpty { throw .emptySegment }
                if segment == "." || segment == ".." { throw .dotSegment }
                segments.append(segment)
            }
        }
        self.segments = segments
        self.query = queryStart.map { Substring(target)[target.index(after: $0)...] }
    }

    /// The path in its one spelling, without the query.
    public var description: String { "/" + segments.joined(separator: "/") }

    /// Whether the path is exactly these segments (`matches("api", "streams")`).
    public func matches(_ expected: String...) -> Bool {
        segments.count == expected.count && zip(segments, expected).allSatisfy { $0 == $1 }
    }

    /// unreserved / sub-delims / ":" / "@" / "/" (RFC 3986 pchar without pct-encoded).
    static func isPathByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "/"), UInt8(ascii: ":"), UInt8(ascii: "@"),
             UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="):
            true
        default:
            false
        }
    }
}
