import Foundation

/// Who a request really comes from, and what host and scheme it was sent
/// to, when it came through a trusted reverse proxy.
///
/// The chain of addresses comes from `Forwarded` (RFC 7239, its `for=`
/// parameters) or else `X-Forwarded-For`; each proxy appends the address it
/// saw, so the client is the rightmost address that is not a trusted proxy
/// (anything left of it could have been written by the client itself).
/// For a connection that is not from a trusted proxy, every one of these
/// headers is ignored.
package struct ForwardedClient: Equatable, Sendable {
    /// The client's IP address.
    package let address: String
    /// `X-Forwarded-Host` / `host=`: the host the browser connected to (for the origin check).
    let host: String?
    /// `X-Forwarded-Proto` / `proto=`: `http` or `https` as the browser used it.
    let scheme: String?

    /// Headers by lower-case name; `peer` is the TCP peer's IP address.
    package static func resolve(peer: String, header: (String) -> String?, trusted: TrustedProxies) -> ForwardedClient {
        guard trusted.trusts(peer) else { return ForwardedClient(address: peer, host: nil, scheme: nil) }
        var chain: [String] = []
        var host: String?
        var scheme: String?
        if let forwarded = header("forwarded") {
            for element in forwarded.split(separator: ",") {
                for pair in element.split(separator: ";") {
                    let kv = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                    guard kv.count == 2 else { continue }
                    let value = unquote(kv[1])
                    switch kv[0].lowercased() {
                    case "for": chain.append(nodeAddress(value))
                    case "host": host = value
                    case "proto": scheme = value.lowercased()
                    default: break
                    }
                }
            }
        } else if let list = header("x-forwarded-for") {
            chain = list.split(separator: ",").map { nodeAddress($0.trimmingCharacters(in: .whitespaces)) }
            host = header("x-forwarded-host").flatMap { $0.split(separator: ",").last.map { $0.trimmingCharacters(in: .whitespaces) } }
            scheme = header("x-forwarded-proto").flatMap { $0.split(separator: ",").last.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } }
        }
        // Right to left: the proxy closest to us wrote the last entry.
        var client = peer
        for candidate in chain.reversed() {
            // An entry that is not an address ("unknown", an obfuscated name)
            // cannot be limited or audited as one: stop at the proxy that wrote it.
            guard TrustedProxies.Range.bytes(of: candidate) != nil else { break }
            client = candidate
            if !trusted.trusts(candidate) { break }
        }
        return ForwardedClient(address: client, host: host, scheme: scheme)
    }

    private static func unquote(_ value: String) -> String {
        value.count >= 2 && value.hasPrefix("\"") && value.hasSuffix("\"") ? String(value.dropFirst().dropLast()) : value
    }

    /// `192.0.2.60`, `192.0.2.60:4711`, `[2001:db8::1]:4711` or `2001:db8::1` → the address alone.
    private static func nodeAddress(_ node: String) -> String {
        if node.hasPrefix("["), let close = node.firstIndex(of: "]") {
            return String(node[node.index(after: node.startIndex)..<close])
        }
        if node.filter({ $0 == ":" }).count == 1, let colon = node.firstIndex(of: ":") {
            return String(node[..<colon])
        }
        return node
    }
}
