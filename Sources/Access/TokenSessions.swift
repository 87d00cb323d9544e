import NIOConcurrencyHelpers

/// Every open socket that was let in with a token, so that a revocation
/// can find the sockets of the revoked token and end them at once, on
/// whichever connection they are.
package final class TokenSessions: Sendable {
    package init() {}

    private let leases = NIOLockedValueBox<[ObjectIdentifier: TokenLease]>([:])

    func add(_ lease: TokenLease) { leases.withLockedValue { $0[ObjectIdentifier(lease)] = lease } }
    package func remove(_ lease: TokenLease) { leases.withLockedValue { $0[ObjectIdentifier(lease)] = nil } }

    var count: Int { leases.withLockedValue { $0.count } }

    /// Ends every open socket whose token is now revoked; returns how many.
    @discardableResult
    package func endRevoked(_ revocations: Revocations) -> Int {
        let all = leases.withLockedValue { Array($0.values) }
        let revoked = all.filter { revocations.isRevoked($0.grant) }
        for lease in revoked { lease.end(.revoked) }
        return revoked.count
    }
}
