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
/// pictures already flowing.
package final class TokenLease: Sendable {
    private let current: NIOLockedValueBox<AccessGrant>
    private let endedWith = NIOLockedValueBox<TokenEnd?>(nil)
    private let ends: AsyncStream<TokenEnd>
    private let endContinuation: AsyncStream<TokenEnd>.Continuation

    /// What the socket does: a refresh token must grant this role too.
    let acting: TokenRole
    /// What `exp` is compared with and waited on.
    package let clock: any RelayClock

    init(_ grant: AccessGrant, acting: TokenRole, clock: any RelayClock = SystemRelayClock()) {
        self.acting = acting
        self.clock = clock
        current = NIOLockedValueBox(grant)
        (ends, endContinuation) = AsyncStream.makeStream(of: TokenEnd.self, bufferingPolicy: .bufferingOldest(1))
    }

    package var grant: AccessGrant { current.withLockedValue { $0 } }

    /// Ends the socket from outside (a revocation).
    func end(_ reason: TokenEnd) { endContinuation.yield(reason) }

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
        current.withLockedValue { $0 = fresh }
        return fresh
    }

    /// Waits until the token in force expires or is ended from outside.
    /// `warn` is called once per token `warningLead` before its `exp` (at
    /// once if less is left). Cancelling the task ends the wait. One child
    /// task keeps the time; an expiry reaches the wait as a revocation does,
    /// through `ends`: a socket with auth costs one task more, not two.
    package func run(warningLead: Duration, warn: @escaping @Sendable (AccessGrant) -> Void) async -> TokenEnd? {
        let first = await withTaskGroup(of: Void.self) { group -> TokenEnd? in
            group.addTask { [self] in
                if await expires(warningLead: warningLead, warn: warn) { end(.expired) }
            }
            defer { group.cancelAll() }
            for await end in ends { return end }
            return nil  // cancelled
        }
        if let first { endedWith.withLockedValue { $0 = first } }
        return first
    }

    /// True once the token in force has expired; false when cancelled first.
    private func expires(warningLead: Duration, warn: @Sendable (AccessGrant) -> Void) async -> Bool {
        var warnedFor: Date?
        while !Task.isCancelled {
            let grant = self.grant
            let left = grant.expires.timeIntervalSince(clock.now)
            if left <= 0 { return true }
            let warnAt = grant.expires.addingTimeInterval(-warningLead.seconds)
            if warnedFor != grant.expires, left <= warningLead.seconds {
                warn(grant)
                warnedFor = grant.expires
                continue
            }
            // A refresh only ever moves `exp` later, so waking at the old
            // moment and looking again is never late.
            do {
                try await clock.sleep(until: warnedFor == grant.expires ? grant.expires : warnAt)
            } catch {
                return false
            }
        }
        return false
    }

    /// How the token ended the socket, once `run` has said so.
    package var ended: TokenEnd? { endedWith.withLockedValue { $0 } }

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
