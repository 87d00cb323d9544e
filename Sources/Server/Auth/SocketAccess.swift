/// What an open socket needs to keep its token current: the authority to
/// check a refresh with, the registry revocations look in, and how early
/// to warn. nil for the relay when auth is off.
struct SocketAccess: Sendable {
    let authority: TokenAuthority
    let sessions: TokenSessions
    let expiryWarning: Duration

    /// The lease of one socket's token, registered so a revocation finds
    /// it; the connection removes it from `sessions` when it ends.
    func lease(_ grant: AccessGrant, acting: TokenRole) -> TokenLease {
        let lease = TokenLease(grant, acting: acting)
        sessions.add(lease)
        return lease
    }
}
