import NIOConcurrencyHelpers

/// Every revocation the relay knows, from the revocation file and (in a
/// cluster) from Redis, in one place that token checks and open sockets
/// both consult.
///
/// A change is told to `onChange` listeners outside the lock, so the open
/// sockets of a newly revoked token are closed at once, not at their next
/// message.
package final class Revocations: Sendable {
    /// Where a revocation came from: the file is read whole each time it
    /// changes (an entry removed from it is lifted); the cluster only adds.
    enum Source: Sendable { case file, cluster }

    private struct State {
        var file: Set<Revocation> = []
        var cluster: Set<Revocation> = []
        var listeners: [@Sendable () -> Void] = []
    }

    private let state = NIOLockedValueBox(State())

    package init() {}

    func isRevoked(_ grant: AccessGrant) -> Bool {
        state.withLockedValue { s in s.file.contains { $0.revokes(grant) } || s.cluster.contains { $0.revokes(grant) } }
    }

    /// Replaces what the file said; returns how many entries are new.
    @discardableResult
    func replaceFromFile(_ revocations: Set<Revocation>) -> Int {
        let (added, listeners) = state.withLockedValue { s in
            let added = revocations.subtracting(s.file).count
            s.file = revocations
            return (added, s.listeners)
        }
        if added > 0 { listeners.forEach { $0() } }
        return added
    }

    /// Adds what another node (or `framepipe revoke --redis`) published; true when it was new.
    @discardableResult
    package func addFromCluster(_ revocations: some Sequence<Revocation>) -> Bool {
        let (isNew, listeners) = state.withLockedValue { s in
            let before = s.cluster.count
            s.cluster.formUnion(revocations)
            return (s.cluster.count > before, s.listeners)
        }
        if isNew { listeners.forEach { $0() } }
        return isNew
    }

    var count: Int { state.withLockedValue { $0.file.union($0.cluster).count } }

    /// Called after every change that revokes something new.
    package func onChange(_ listener: @escaping @Sendable () -> Void) {
        state.withLockedValue { $0.listeners.append(listener) }
    }
}
