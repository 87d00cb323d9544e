import Foundation
import NIOConcurrencyHelpers
@testable import Pipeline
import TestFixtures

/// A `RelayClock` the test moves: the relay's token leases and revocation
/// checks wait on it, and wake only when `advance` passes their deadline.
/// It starts at the real time, so tokens minted by the test verify (their
/// signature check reads the system clock) and expire when the test says.
final class ManualRelayClock: RelayClock, Sendable {
    private struct Sleeper {
        let id: Int
        let deadline: Date
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Date
        var sleepers: [Sleeper] = []
        var nextID = 0
    }

    private let state: NIOLockedValueBox<State>
    /// Wakes tests waiting for a rule to arm itself.
    private let changes = ChangeSignal()
    private let start: (date: Date, instant: ContinuousClock.Instant)

    init(start: Date = Date()) {
        state = NIOLockedValueBox(State(now: start))
        self.start = (start, .now)
    }

    var now: Date { state.withLockedValue { $0.now } }

    var instant: ContinuousClock.Instant {
        start.instant + .milliseconds(Int64((now.timeIntervalSince(start.date) * 1000).rounded()))
    }

    /// Whether some rule is waiting for `deadline` now: proof that it has
    /// looked at the time and armed itself for that moment.
    func isWaiting(until deadline: Date) -> Bool {
        state.withLockedValue { $0.sleepers.contains { abs($0.deadline.timeIntervalSince(deadline)) < 0.001 } }
    }

    /// The earliest moment some rule waits for within `range`: a wait whose
    /// exact deadline the test cannot know (a jittered retry) but whose bounds it can.
    /// Choose bounds no other rule's wait can fall in (a camera's clock ping waits
    /// exactly 1 s or 10 s, housekeeping up to 0.1 s): the clock cannot tell them apart.
    func earliestSleeper(in range: Range<Date>) -> Date? {
        state.withLockedValue { $0.sleepers.map(\.deadline).filter(range.contains).min() }
    }

    /// Waits until some rule is waiting for `deadline`, woken as rules arm themselves.
    func waitForSleeper(until deadline: Date, timeout: Duration = TestDeadline.event) async throws {
        guard await changes.wait(timeout: timeout, until: { isWaiting(until: deadline) }) else {
            throw ClockTimedOut(deadline: deadline)
        }
    }

    struct ClockTimedOut: Error { let deadline: Date }

    func sleep(until deadline: Date) async throws {
        let id = state.withLockedValue { s -> Int in
            defer { s.nextID += 1 }
            return s.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                // A task cancelled before it got here has had its cancellation
                // handler run already, finding nothing: it must not wait.
                let outcome = state.withLockedValue { s -> Result<Bool, CancellationError> in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if deadline <= s.now { return .success(true) }
                    s.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return .success(false)
                }
                switch outcome {
                case .failure(let cancelled): continuation.resume(throwing: cancelled)
                case .success(true): continuation.resume()
                case .success(false): changes.changed()
                }
            }
        } onCancel: {
            let cancelled = state.withLockedValue { s -> Sleeper? in
                guard let index = s.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return s.sleepers.remove(at: index)
            }
            cancelled?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves the clock on and wakes every sleep that is then due.
    func advance(by duration: Duration) {
        advance(to: now.addingTimeInterval(duration.seconds))
    }

    func advance(to instant: Date) {
        let due = state.withLockedValue { s -> [Sleeper] in
            s.now = max(s.now, instant)
            let due = s.sleepers.filter { $0.deadline <= s.now }
            s.sleepers.removeAll { $0.deadline <= s.now }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }
}
