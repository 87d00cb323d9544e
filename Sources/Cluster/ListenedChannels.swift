import NIOConcurrencyHelpers

/// The channels Redis has confirmed a broker listens on (its `subscribe` or
/// `ssubscribe` came back), told to the service as they come, and awaited
/// when joining.
///
/// It exists because a subscription takes effect only when Redis confirms
/// it: a frame published before is not delivered. So a node asks a stream's
/// owner for its latest frame once its subscription to the stream is
/// confirmed (earlier, a frame published between the two was lost, and a
/// camera that sends one picture a minute left a blank tile), and counts as
/// joined once its control channels are.
package final class ListenedChannels: Sendable {
    private struct State {
        var confirmed: Set<String> = []
        var waiters: [(id: Int, channels: Set<String>, done: CheckedContinuation<Bool, Never>)] = []
        var nextWaiter = 0
    }

    private let state = NIOLockedValueBox(State())
    private let onConfirmed: @Sendable (Set<String>) -> Void

    /// `onConfirmed` gets the channels each confirmation adds.
    init(onConfirmed: @escaping @Sendable (Set<String>) -> Void) {
        self.onConfirmed = onConfirmed
    }

    /// Whether Redis confirmed `channel`.
    func contains(_ channel: String) -> Bool {
        state.withLockedValue { $0.confirmed.contains(channel) }
    }

    /// Redis now confirms exactly `channels` (a sharded subscriber's whole placement).
    func confirmedExactly(_ channels: Set<String>) {
        let added = state.withLockedValue { s -> Set<String> in
            let added = channels.subtracting(s.confirmed)
            s.confirmed = channels
            return added
        }
        announce(added)
    }

    /// Redis confirmed `channel` (a `subscribe` push).
    func confirmed(_ channel: String) {
        let added = state.withLockedValue { $0.confirmed.insert(channel).inserted }
        if added { announce([channel]) }
    }

    /// Redis confirmed leaving `channel` (an `unsubscribe` push).
    func left(_ channel: String) {
        state.withLockedValue { _ = $0.confirmed.remove(channel) }
    }

    private func announce(_ added: Set<String>) {
        guard !added.isEmpty else { return }
        let ready = state.withLockedValue { s -> [CheckedContinuation<Bool, Never>] in
            let ready = s.waiters.filter { $0.channels.isSubset(of: s.confirmed) }.map(\.done)
            s.waiters.removeAll { $0.channels.isSubset(of: s.confirmed) }
            return ready
        }
        for done in ready { done.resume(returning: true) }
        onConfirmed(added)
    }

    /// Until all of `channels` are confirmed; false if `timeout` passed first.
    func wait(for channels: Set<String>, timeout: Duration) async -> Bool {
        await withCheckedContinuation { done in
            let id = state.withLockedValue { s -> Int? in
                if channels.isSubset(of: s.confirmed) { return nil }
                s.nextWaiter += 1
                s.waiters.append((s.nextWaiter, channels, done))
                return s.nextWaiter
            }
            guard let id else {
                done.resume(returning: true)
                return
            }
            Task {
                try? await Task.sleep(for: timeout)
                let late = state.withLockedValue { s -> CheckedContinuation<Bool, Never>? in
                    guard let index = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                    return s.waiters.remove(at: index).done
                }
                late?.resume(returning: false)
            }
        }
    }
}
