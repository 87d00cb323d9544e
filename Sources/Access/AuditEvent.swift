import Foundation
import Pipeline

/// One line of the audit trail: who watched or published which streams,
/// from where, for how long, and every request that was turned away.
///
/// It never holds a token: a refused request's path is kept without its
/// query (where a token may travel), and reasons are the relay's own words.
package enum AuditEvent: Sendable {
    /// What a socket was: a viewer watching or a streamer publishing.
    package enum SessionKind: String, Sendable { case viewer, streamer }

    /// Who a session or refusal was, as far as the relay knows it.
    package struct Identity: Sendable {
        var subject: String?
        var jti: String?
        var role: TokenRole?
        /// The real client address (behind a trusted proxy, the one it named).
        package var client: String

        /// `role` is what the session did (a token may grant both roles).
        package init(grant: AccessGrant?, role: TokenRole? = nil, client: String) {
            subject = grant?.subject
            jti = grant?.jti
            self.role = grant == nil ? nil : role
            self.client = client
        }
    }

    case sessionStarted(kind: SessionKind, session: String, identity: Identity, streams: [String]?)
    case sessionEnded(kind: SessionKind, session: String, identity: Identity, streams: [String]?,
                      duration: Duration, frames: Int, reason: String)
    /// `what` is `upgrade` or `http`; `status` the HTTP status given.
    case refused(what: String, path: String, status: Int, code: String, reason: String, identity: Identity)

    /// The JSON line, without the newline.
    func line(at time: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var members: [(key: String, value: JSONValue)] = [("time", .string(formatter.string(from: time)))]
        func add(_ identity: Identity) {
            members.append(("subject", identity.subject.map(JSONValue.string) ?? .null))
            members.append(("jti", identity.jti.map(JSONValue.string) ?? .null))
            members.append(("role", identity.role.map { .string($0.rawValue) } ?? .null))
            members.append(("client", .string(identity.client)))
        }
        func streams(_ list: [String]?) -> JSONValue { list.map { .array($0.map(JSONValue.string)) } ?? .string("all") }
        switch self {
        case .sessionStarted(let kind, let session, let identity, let list):
            members += [("event", .string("session_started")), ("kind", .string(kind.rawValue)), ("session", .string(session))]
            add(identity)
            members.append(("streams", streams(list)))
        case .sessionEnded(let kind, let session, let identity, let list, let duration, let frames, let reason):
            members += [("event", .string("session_ended")), ("kind", .string(kind.rawValue)), ("session", .string(session))]
            add(identity)
            members += [("streams", streams(list)), ("duration_s", .number((duration.seconds * 1000).rounded() / 1000)),
                        ("frames", .number(Double(frames))), ("end_reason", .string(reason))]
        case .refused(let what, let path, let status, let code, let reason, let identity):
            members += [("event", .string("refused")), ("what", .string(what)),
                        ("path", .string(String(path.split(separator: "?", maxSplits: 1).first?.prefix(256) ?? ""))),
                        ("status", .number(Double(status))), ("code", .string(code)), ("reason", .string(reason))]
            add(identity)
        }
        return JSONValue.object(members).jsonText
    }
}
