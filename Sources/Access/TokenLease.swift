import Foundation
import NIOConcurrencyHelpers
import Pipeline

/// Why a socket's token stopped letting it in.
package enum TokenEnd: Sendable, Equatable {
    case expired, revoked

    /// The WebSocket close code and reason the client sees.
    package var closeCode: UInt16 { self == .expired ? 4001 : 4003 }
    package var reason: String { self == .expired ? "token_expired" : "token_revoked" }
    package var streamEndReason: StreamEndReason { self == .expired ? .tokenExpired : .tokenRevoked }
}

/// One open socket's token, for as long as the socket is open: the socket
/// ends when the token's `exp` passes (with a `token_expiring` warning
/// shortly before) unless the client sent a fresh token over the socket,
/// and ends at once when the token is revoked.
///
/// A token checked only at the upgrade would let a socket outlive it by
/// days; this is what makes `exp` and revocation mean something for the
/// pictures already flowing. The lease keeps no time itself: `TokenSessions`
/// asks it what is due (`due(at:)`) at the moments it names.
package final class TokenLease: Sendable {
    /// What the socket does when its token warns or ends.
    package struct Watch: Sendable {
        /// How long before `exp` the warning comes; zero for none.
        let warningLead: Duration
        /// Told the token in force and the moment it is warned at.
        let warn: @Sendable (AccessGrant, _ now: Date) -> Void
        let end: @Sendable (TokenEnd) -> Void
    }

    private struct State {
        var grant: AccessGrant
        var watch: Watch?
        var ended: TokenEnd?
        /// The `exp` the last warning was for: one warning per token.
        var warnedFor: Date?
    }

    private let state: NIOLockedValueBox<State>

    /// What the socket does: a refresh token must grant this role too.
    let acting: TokenRole

    init(_ grant: AccessGrant, acting: TokenRole) {
        self.acting = acting
        state = NIOLockedValueBox(State(grant: grant))
    }

    package var grant: AccessGrant { state.withLockedValue { $0.grant } }

    /// How the token ended the socket, once it has.
    package var ended: TokenEnd? { state.withLockedValue { $0.ended } }

    /// Ends the socket from outside (a revocation) or at `exp`; the first end
    /// counts. One that comes before the socket watches is told when it does.
    func end(_ reason: TokenEnd) {
        let watch = state.withLockedValue { s -> Watch? in
            guard s.ended == nil else { return nil }
            s.ended = reason
            return s.watch
        }
        watch?.end(reason)
    }

    /// Starts telling the socket when its token warns or ends.
    func startWatching(_ watch: Watch) {
        let endedAlready = state.withLockedValue { s -> TokenEnd? in
            s.watch = watch
            return s.ended
        }
        endedAlready.map(watch.end)
    }

    /// Nothing more is told to a socket that has ended.
    func stopWatching() { state.withLockedValue { $0.watch = nil } }

    /// Warns or ends the socket if that is due at `now`, and says when to
    /// look again (nil once ended, or when nobody watches). A refresh only
    /// ever moves `exp` later, so looking at the old moment is never late.
    func due(at now: Date) -> Date? {
        enum Step { case warn(AccessGrant, Watch), end(Watch), look(Date), nothing }
        while true {
            let step = state.withLockedValue { s -> Step in
                guard s.ended == nil, let watch = s.watch else { return .nothing }
                let expires = s.grant.expires
                if now >= expires {
                    s.ended = .expired
                    return .end(watch)
                }
                guard s.warnedFor != expires else { return .look(expires) }
                let warnAt = expires.addingTimeInterval(-watch.warningLead.seconds)
                guard now >= warnAt else { return .look(warnAt) }
                s.warnedFor = expires
                return .warn(s.grant, watch)
            }
            switch step {
            case .warn(let grant, let watch): watch.warn(grant, now)  // then look again: the end may be due too
            case .end(let watch): watch.end(.expired); return nil
            case .look(let moment): return moment
            case .nothing: return nil
            }
        }
    }

    /// Takes a fresh token for the socket: it must be valid, of the same
    /// role, cover no stream the current one does not, and expire later.
    /// On any problem the current token stays.
    package func refresh(with token: String, authority: TokenAuthority) async throws(AuthFailure) -> AccessGrant {
        let fresh = try await authority.verify(token)
        let old = grant
        guard fresh.roles.contains(acting) else {
            throw AuthFailure(kind: .wrongRole, reason: "the refresh token does not grant the \(acting.rawValue) role this socket has")
        }
        guard old.scope.covers(fresh.scope) else {
            throw AuthFailure(kind: .widens, reason: "the refresh token covers streams (\(fresh.scope)) that this socket's token (\(old.scope)) does not")
        }
        guard fresh.expires > old.expires else {
            throw AuthFailure(kind: .expired, reason: "the refresh token expires no later than the one in use")
        }
        state.withLockedValue { $0.grant = fresh }
        return fresh
    }

    /// The message that tells a client its token is about to expire.
    package static func expiringMessage(_ grant: AccessGrant, now: Date = Date()) -> String {
        let left = max(0, grant.expires.timeIntervalSince(now))
        return JSONValue.object([
            ("type", .string("token_expiring")),
            ("expires_at", .number(Double(grant.expires.millisecondsSince1970))),
            ("seconds_left", .number(left.rounded())),
        ]).jsonText
    }

    package static func refreshedMessage(_ grant: AccessGrant) -> String {
        JSONValue.object([
            ("type", .string("token_refreshed")),
            ("expires_at", .number(Double(grant.expires.millisecondsSince1970))),
        ]).jsonText
    }
}
