import Foundation
import JWTKit
import Pipeline

/// Every claim of a token, kept as JSON so the role and the streams can be
/// read from wherever an identity provider puts them (`ClaimMapping`).
/// jwt-kit checks the signature; `verify` checks `exp` (required) and `nbf`.
struct TokenClaims: JWTPayload {
    let json: JSONValue

    init(from decoder: any Decoder) throws {
        json = try ClaimJSON(from: decoder).value
    }

    func encode(to encoder: any Encoder) throws {
        throw EncodingError.invalidValue(json, .init(codingPath: [], debugDescription: "claims are only ever read"))
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {
        guard case .number(let exp)? = json["exp"] else {
            throw JWTError.claimVerificationFailure(failedClaim: nil, reason: "the token has no exp")
        }
        try ExpirationClaim(value: Date(timeIntervalSince1970: exp)).verifyNotExpired()
        if case .number(let nbf)? = json["nbf"] {
            try NotBeforeClaim(value: Date(timeIntervalSince1970: nbf)).verifyNotBefore()
        }
    }

    /// The value at a dot path (`realm_access.roles`), or nil.
    func value(at path: String) -> JSONValue? {
        path.split(separator: ".").reduce(Optional(json)) { node, key in node?[String(key)] }
    }

    /// Strings at a path: an array of strings, or one string of names separated by spaces or commas (as OAuth scopes are).
    func strings(at path: String) -> [String]? {
        switch value(at: path) {
        case .string(let text)?: return text.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
        case .array(let items)?: return items.compactMap(\.stringValue)
        default: return nil
        }
    }

    func date(_ name: String) -> Date? {
        if case .number(let seconds)? = json[name] { return Date(timeIntervalSince1970: seconds) }
        return nil
    }
}

/// Decodes any JSON into a `JSONValue`.
private struct ClaimJSON: Decodable {
    let value: JSONValue

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        if let object = try? decoder.container(keyedBy: Key.self) {
            value = .object(try object.allKeys.map { ($0.stringValue, try object.decode(ClaimJSON.self, forKey: $0).value) })
        } else if var array = try? decoder.unkeyedContainer() {
            var items: [JSONValue] = []
            while !array.isAtEnd { items.append(try array.decode(ClaimJSON.self).value) }
            value = .array(items)
        } else {
            let single = try decoder.singleValueContainer()
            if single.decodeNil() { value = .null }
            else if let b = try? single.decode(Bool.self) { value = .bool(b) }
            else if let n = try? single.decode(Double.self) { value = .number(n) }
            else { value = .string(try single.decode(String.self)) }
        }
    }
}
