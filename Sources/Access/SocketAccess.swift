import Foundation
import Pipeline
/// What an open socket needs to keep its token current: the authority to
/// check a refresh with, the registry revocations look in, and how early
/// to warn. nil for the relay when auth is off.
package struct SocketAccess: Sendable {
    package let authority: TokenAuthority
    package let sessions: TokenSessions
    package let expiryWarning: Duration

    package init(authority: TokenAuthority, sessions: TokenSessions, expiryWarning: Duration) {
        self.authority = authority
        self.sessions = sessions
        self.expiryWarning = expiryWarning
    }

    /// The lease of one socket's token, registered so a revocation finds
    /// it; the connection removes it from `sessions` when it ends.
    package func lease(_ grant: AccessGrant, acting: TokenRole) -> TokenLease {
        let lease = TokenLease(grant, acting: acting)
        sessions.add(lease)
        return lease
    }

    /// Tells the socket when its token warns (`warningLead` before `exp`;
    /// zero for no warning) and when it ends, expired or revoked. Calls
    /// come from the relay's one time-keeping task or a revocation, never
    /// after the socket's lease is removed from `sessions`.
    package func watch(_ lease: TokenLease, warningLead: Duration = .zero, warn: @escaping @Sendable (AccessGrant, _ now: Date) -> Void = { _, _ in },
                       end: @escaping @Sendable (TokenEnd) -> Void) {
        sessions.watch(lease, TokenLease.Watch(warningLead: warningLead, warn: warn, end: end))
    }
}
