import Foundation
import Pipeline

/// One revocation: a single token by its `jti`, or every token of a subject
/// issued up to the moment it was revoked (a token issued later, once the
/// subject is allowed back, is not affected; a token without `iat` is).
///
/// One JSON object per line in the revocation file and one message on the
/// cluster's revocation channel, in the same form:
/// `{"jti":"…","at":1732500000123}` or `{"sub":"…","at":1732500000123}`.
package struct Revocation: Sendable, Hashable {
    package enum Target: Sendable, Hashable {
        case token(jti: String)
        case subject(String)
    }

    package let target: Target
    /// When it was revoked (ms since epoch).
    let at: Int64

    func revokes(_ grant: AccessGrant) -> Bool {
        switch target {
        case .token(let jti):
            return grant.jti == jti
        case .subject(let subject):
            guard grant.subject == subject else { return false }
            guard let issued = grant.issuedAt else { return true }
            return issued.millisecondsSince1970 <= at
        }
    }

    package var json: String {
        switch target {
        case .token(let jti): JSONValue.object([("jti", .string(jti)), ("at", .number(Double(at)))]).jsonText
        case .subject(let sub): JSONValue.object([("sub", .string(sub)), ("at", .number(Double(at)))]).jsonText
        }
    }

    /// What a log line says it is, without anything secret (a jti is a name, not a credential).
    package var description: String {
        switch target {
        case .token(let jti): "token \(jti)"
        case .subject(let sub): "subject \(sub)"
        }
    }

    package struct Invalid: Error, CustomStringConvertible {
        package let reason: String
        package var description: String { reason }
    }

    package init(target: Target, at: Int64) {
        self.target = target
        self.at = at
    }

    package init(json text: Substring) throws(Invalid) {
        let value: JSONValue
        do { value = try JSONParser.parse(String(text)) } catch { throw Invalid(reason: "not JSON: \(error)") }
        guard case .number(let at)? = value["at"], at == at.rounded(), at >= 0, at < 9e15 else {
            throw Invalid(reason: #""at" must be a time in ms since the epoch"#)
        }
        switch (value["jti"]?.stringValue, value["sub"]?.stringValue) {
        case (let jti?, nil) where !jti.isEmpty: self.init(target: .token(jti: jti), at: Int64(at))
        case (nil, let sub?) where !sub.isEmpty: self.init(target: .subject(sub), at: Int64(at))
        default: throw Invalid(reason: #"exactly one of "jti" and "sub" must be a non-empty string"#)
        }
    }

    /// The lines of a revocation file; a bad line is reported with its number and skipped, the rest kept.
    static func parseFile(_ text: String) -> (revocations: Set<Revocation>, problems: [String]) {
        var revocations = Set<Revocation>()
        var problems: [String] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            do throws(Invalid) {
                revocations.insert(try Revocation(json: Substring(trimmed)))
            } catch {
                problems.append("line \(index + 1): \(error.reason)")
            }
        }
        return (revocations, problems)
    }
}
