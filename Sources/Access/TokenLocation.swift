import Foundation

/// Where a client may put its token: `Authorization: Bearer`, a `token`
/// query parameter, or — for browsers, which cannot set headers on a
/// WebSocket — `Sec-WebSocket-Protocol: framepipe, <token>`, which the
/// relay answers with the `framepipe` protocol.
package enum TokenLocation {
    package static let subprotocol = "framepipe"

    package static func token(authorization: String?, webSocketProtocols: String?, uri: String) -> String? {
        if let authorization {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                return String(parts[1]).trimmingCharacters(in: .whitespaces)
            }
        }
        if let protocols = webSocketProtocols {
            let offered = protocols.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            if offered.contains(subprotocol), let token = offered.first(where: { $0 != subprotocol && $0.contains(".") }) {
                return token
            }
        }
        if let query = uri.split(separator: "?", maxSplits: 1).dropFirst().first,
           let items = URLComponents(string: "?" + query)?.queryItems,
           let token = items.first(where: { $0.name == "token" })?.value, !token.isEmpty {
            return token
        }
        return nil
    }

    /// True when the client offered the `framepipe` subprotocol, which the upgrade must then echo.
    package static func offersSubprotocol(_ webSocketProtocols: String?) -> Bool {
        webSocketProtocols?.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces) == subprotocol } ?? false
    }
}
