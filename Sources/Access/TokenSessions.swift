import Foundation
import NIOConcurrencyHelpers
import Pipeline
import ServiceLifecycle

/// Every open socket that was let in with a token. A revocation finds the
/// sockets of the revoked token here and ends them at once, on whichever
/// connection they are; and one task for the whole relay keeps every
/// token's time (its `token_expiring` warning, its `exp`), on the relay's
/// clock. A task per socket would keep the same time, but an idle viewer's
/// memory is mostly its tasks' frames: here a socket with auth costs no
/// task of its own.
package final class TokenSessions: Service, Sendable {
    private struct State {
        /// Every lease, with the moment it next needs looking at (nil: none
        /// yet, or it has ended).
        var leases: [ObjectIdentifier: (lease: TokenLease, due: Date?)] = [:]
        /// The keeper's wait, while it waits: for the earliest `due`, or to be
        /// woken sooner by a lease due before it.
        var waiting: Waiting?
        /// Which wait is which, so a late sleeper wakes no later wait.
        var waits = 0
        var stopped = false
    }

    private struct Waiting {
        let number: Int
        let until: Date?
        let wake: CheckedContinuation<Void, Never>
        var sleeper: Task<Void, Never>?
    }

    private let state = NIOLockedValueBox(State())
    private let clock: any RelayClock

    package init(clock: any RelayClock = SystemRelayClock()) {
        self.clock = clock
    }

    func add(_ lease: TokenLease) { state.withLockedValue { $0.leases[ObjectIdentifier(lease)] = (lease, nil) } }

    /// Forgets a socket that has ended: nothing more is told to it.
    package func remove(_ lease: TokenLease) {
        lease.stopWatching()
        state.withLockedValue { $0.leases[ObjectIdentifier(lease)] = nil }
    }

    var count: Int { state.withLockedValue { $0.leases.count } }

    /// Starts keeping `lease`'s time: `watch` is told when it warns or ends.
    /// A warning already due comes before this returns.
    func watch(_ lease: TokenLease, _ watch: TokenLease.Watch) {
        lease.startWatching(watch)
        schedule(lease, at: lease.due(at: clock.now))
    }

    /// Ends every open socket whose token is now revoked; returns how many.
    @discardableResult
    package func endRevoked(_ revocations: Revocations) -> Int {
        let all = state.withLockedValue { $0.leases.values.map(\.lease) }
        let revoked = all.filter { revocations.isRevoked($0.grant) }
        for lease in revoked { lease.end(.revoked) }
        return revoked.count
    }

    // MARK: The keeper

    /// Keeps the leases' time until the relay stops.
    package func run() async throws {
        await cancelWhenGracefulShutdown { await self.keepTime() }
    }

    private func keepTime() async {
        while !Task.isCancelled {
            let now = clock.now
            let due = state.withLockedValue { s in s.leases.values.filter { $0.due.map { $0 <= now } ?? false }.map(\.lease) }
            for lease in due { schedule(lease, at: lease.due(at: now)) }
            await waitForNextDue()
        }
    }

    private func schedule(_ lease: TokenLease, at moment: Date?) {
        let sooner = state.withLockedValue { s -> Waiting? in
            let id = ObjectIdentifier(lease)
            guard s.leases[id] != nil else { return nil }  // removed meanwhile
            s.leases[id]?.due = moment
            guard let moment, let waiting = s.waiting, waiting.until.map({ moment < $0 }) ?? true else { return nil }
            s.waiting = nil
            return waiting
        }
        sooner?.sleeper?.cancel()
        sooner?.wake.resume()
    }

    /// Returns at the earliest lease's moment, when a lease is due sooner,
    /// or when the task is cancelled.
    private func waitForNextDue() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (wake: CheckedContinuation<Void, Never>) in
                let wait = state.withLockedValue { s -> (number: Int, until: Date?)? in
                    guard !s.stopped else { return nil }
                    s.waits += 1
                    let earliest = s.leases.values.compactMap(\.due).min()
                    s.waiting = Waiting(number: s.waits, until: earliest, wake: wake)
                    return (s.waits, earliest)
                }
                guard let wait else { return wake.resume() }
                guard let moment = wait.until else { return }  // nothing to wait for until a lease is watched
                let sleeper = Task { [clock] in
                    guard (try? await clock.sleep(until: moment)) != nil else { return }
                    self.wakeKeeper(fromWait: wait.number)
                }
                let stillWaiting = state.withLockedValue { s -> Bool in
                    guard s.waiting?.number == wait.number else { return false }
                    s.waiting?.sleeper = sleeper
                    return true
                }
                if !stillWaiting { sleeper.cancel() }
            }
        } onCancel: {
            let waiting = state.withLockedValue { s -> Waiting? in
                s.stopped = true
                defer { s.waiting = nil }
                return s.waiting
            }
            waiting?.sleeper?.cancel()
            waiting?.wake.resume()
        }
    }

    private func wakeKeeper(fromWait number: Int) {
        let waiting = state.withLockedValue { s -> Waiting? in
            guard let waiting = s.waiting, waiting.number == number else { return nil }
            s.waiting = nil
            return waiting
        }
        waiting?.wake.resume()
    }
}
