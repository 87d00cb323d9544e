import Foundation
import Synchronization

/// Wakes the tests waiting on something (a socket's messages, the relay's
/// log, a fake camera, the manual clock, a Redis subscriber) each time it
/// changes, so a wait ends when its event comes, never by polling. Its
/// timeout is the suite's one deadline: it ends only a wait that is
/// already failing.
public final class ChangeSignal: Sendable {
    private let waiters = Mutex<[UUID: AsyncStream<Void>.Continuation]>([:])

    public init() {}

    /// Called by the watched thing after each change.
    public func changed() {
        for waiter in waiters.withLock({ Array($0.values) }) { waiter.yield() }
    }

    /// Waits until `condition` holds, re-checked at each change; false if
    /// `timeout` passed first (a deadline that only ends a failing test).
    public func wait(timeout: Duration, until condition: () -> Bool) async -> Bool {
        if condition() { return true }
        let (changes, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let id = UUID()
        waiters.withLock { $0[id] = continuation }
        defer { waiters.withLock { _ = $0.removeValue(forKey: id) } }
        // The deadline, not a wait: it ends the wait only if the awaited change never comes.
        let timer = Task {
            try? await Task.sleep(for: timeout)
            continuation.finish()
        }
        defer { timer.cancel() }
        if condition() { return true }  // it changed while the wait was being set up
        for await _ in changes where condition() { return true }
        return condition()
    }
}
