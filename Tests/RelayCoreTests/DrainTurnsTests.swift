import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
@testable import RelayCore
import Testing

/// A loop drains its viewers' writers in turns, so what it is asked to do
/// meanwhile (a ping read, a pong to write) does not wait for a thousand
/// writes. On a testing loop whose time the test moves: each turn is one
/// step, and a task queued during a turn runs before the next turn.
@Suite("Drains in turns")
struct DrainTurnsTests {
    /// What ran on the loop, in order.
    final class Record: Sendable {
        private let entries = NIOLockedValueBox<[String]>([])
        func add(_ entry: String) { entries.withLockedValue { $0.append(entry) } }
        var all: [String] { entries.withLockedValue { $0 } }
    }

    /// Starts `inTurns` on the loop over items 0..<count; the first item
    /// also queues another task on the loop, as a ping read would.
    static func start(count: Int, turn: TimeAmount, on loop: NIOAsyncTestingEventLoop, into record: Record) async throws {
        try await loop.executeInContext {
            DrainRequests.inTurns(Array(0..<count)[...], on: loop, turn: turn) { item in
                record.add("\(item)")
                if item == 0 { loop.execute { record.add("other task") } }
            }
        }
    }

    @Test func aUsedTurnLetsQueuedWorkRunBeforeTheRest() async throws {
        let loop = NIOAsyncTestingEventLoop(), record = Record()
        // A zero turn is used up by each item: one item a turn.
        try await Self.start(count: 3, turn: .zero, on: loop, into: record)
        #expect(record.all == ["0"])
        await loop.run()
        #expect(record.all == ["0", "other task"])
        await loop.advanceTime(by: DrainRequests.pause)
        #expect(record.all == ["0", "other task", "1"])
        await loop.advanceTime(by: DrainRequests.pause)
        #expect(record.all == ["0", "other task", "1", "2"])
        await loop.advanceTime(by: .seconds(1))
        #expect(record.all == ["0", "other task", "1", "2"])  // nothing is left to schedule
        try loop.close()
    }

    @Test func itemsWithinATurnRunInOneTask() async throws {
        let loop = NIOAsyncTestingEventLoop(), record = Record()
        try await Self.start(count: 5, turn: .hours(1), on: loop, into: record)
        #expect(record.all == ["0", "1", "2", "3", "4"])
        await loop.run()
        #expect(record.all == ["0", "1", "2", "3", "4", "other task"])
        try loop.close()
    }
}
