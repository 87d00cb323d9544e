/// Which browser origins may open a WebSocket: the relay's own origin (the
/// pages it serves) and any listed with `--allowed-origin`. Requests with no
/// `Origin` header come from devices and scripts, not browsers, and are not
/// judged by it.
///
/// It exists so another web site cannot open a viewer socket from a nurse's
/// browser and read the streams.
public struct OriginPolicy: Sendable {
    /// Full origins such as `https://ward.example:8443`, compared case-insensitively.
    public var allowedOrigins: [String]

    public init(allowedOrigins: [String] = []) {
        self.allowedOrigins = allowedOrigins.map { $0.lowercased() }
    }

    /// nil when the upgrade may go ahead, otherwise the reason to refuse it.
    /// `host` is the host the browser connected to and `scheme`, when a
    /// trusted proxy said it, how (`https` in front of a plain-http relay).
    package func refusal(origin: String?, host: String?, scheme: String? = nil) -> String? {
        guard let origin else { return nil }
        let normalized = origin.lowercased()
        // A browser sends its page's origin (http, https or "null"), and a
        // page cannot forge it. A ws:// or wss:// "origin" is a WebSocket
        // library's own invention, so the client is not a browser; it could as
        // well have sent none.
        if normalized.hasPrefix("ws://") || normalized.hasPrefix("wss://") { return nil }
        if allowedOrigins.contains(normalized) { return nil }
        // Same origin: the Origin's authority is the Host the browser connected to.
        if let host, let authority = Self.authority(of: normalized), authority == Self.withoutDefaultPort(host.lowercased(), scheme: scheme),
           scheme.map({ normalized.hasPrefix($0 + "://") }) ?? true {
            return nil
        }
        return "origin \(origin) is not allowed"
    }

    /// A Host header value with the default port of `scheme` left out, as `authority(of:)` leaves it out.
    static func withoutDefaultPort(_ host: String, scheme: String?) -> String {
        if scheme == "https", host.hasSuffix(":443") { return String(host.dropLast(4)) }
        if scheme == "http", host.hasSuffix(":80") { return String(host.dropLast(3)) }
        return host
    }

    /// `host[:port]` of `scheme://host[:port]`, with the scheme's default port left out.
    package static func authority(of origin: String) -> String? {
        guard let range = origin.range(of: "://") else { return nil }
        let scheme = origin[..<range.lowerBound]
        var authority = String(origin[range.upperBound...])
        if scheme == "http", authority.hasSuffix(":80") { authority.removeLast(3) }
        if scheme == "https", authority.hasSuffix(":443") { authority.removeLast(4) }
        return authority.isEmpty ? nil : authority
    }
}
