@testable import RESP
import Synchronization
import Testing

/// Callers that arrive while an operation runs share it; once it has ended
/// the next caller starts a new one.
@Suite("Single flight")
struct SingleFlightTests {
    final class Runs: Sendable {
        let count = Mutex(0)
    }

    @Test func callersDuringARunShareItAndTheNextCallerAfterItStartsAnother() async throws {
        let flight = SingleFlight()
        let runs = Runs()
        let (release, releasing) = AsyncStream.makeStream(of: Void.self)
        let first = flight.flight {
            runs.count.withLock { $0 += 1 }
            for await _ in release {}
        }
        let second = flight.flight { runs.count.withLock { $0 += 1 } }
        let third = flight.flight { runs.count.withLock { $0 += 1 } }
        #expect(!first.joined)
        #expect(second.joined && third.joined)
        releasing.finish()
        try await first.task.value
        try await second.task.value
        #expect(runs.count.withLock { $0 } == 1, "one run for three callers")

        let after = flight.flight { runs.count.withLock { $0 += 1 } }
        #expect(!after.joined, "the earlier run had ended")
        try await after.task.value
        #expect(runs.count.withLock { $0 } == 2)
    }

    @Test func aFailureReachesEveryCallerThatShared() async throws {
        struct Refused: Error {}
        let flight = SingleFlight()
        let (release, releasing) = AsyncStream.makeStream(of: Void.self)
        let first = flight.flight {
            for await _ in release {}
            throw Refused()
        }
        let second = flight.flight {}
        #expect(second.joined)
        releasing.finish()
        await #expect(throws: Refused.self) { try await first.task.value }
        await #expect(throws: Refused.self) { try await second.task.value }
    }
}
