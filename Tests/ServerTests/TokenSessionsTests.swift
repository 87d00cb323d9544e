@testable import Access
import Foundation
import NIOConcurrencyHelpers
import TestFixtures
import Testing

/// One task keeps every open socket's token time: each lease is warned and
/// ended at its own moments, a lease due sooner than the keeper's wait
/// wakes it, and a socket that has ended is told nothing more.
@Suite("Token sessions' one time-keeping task", .timeLimit(.minutes(1)))
struct TokenSessionsTests {
    /// What the leases told their sockets, in order, as "name: warned" or "name: expired".
    final class Told: Sendable {
        private let events = NIOLockedValueBox<[String]>([])
        private let changes = ChangeSignal()

        var all: [String] { events.withLockedValue { $0 } }

        func watch(_ name: String, lead: Duration = .seconds(2)) -> TokenLease.Watch {
            TokenLease.Watch(warningLead: lead, warn: { _, _ in self.record("\(name): warned") },
                             end: { end in self.record("\(name): \(end == .expired ? "expired" : "revoked")") })
        }

        private func record(_ event: String) {
            events.withLockedValue { $0.append(event) }
            changes.changed()
        }

        func waitFor(_ count: Int) async throws {
            guard await changes.wait(timeout: TestDeadline.event, until: { all.count >= count }) else {
                throw Missing(expected: count, told: all)
            }
        }

        /// Once the keeper waits for `armed`, moves the clock to `moment` and
        /// waits until `count` things have been told in all.
        func step(_ clock: ManualRelayClock, from armed: Date, to moment: Date, until count: Int) async throws {
            try await clock.waitForSleeper(until: armed)
            clock.advance(to: moment)
            try await waitFor(count)
        }

        struct Missing: Error { let expected: Int; let told: [String] }
    }

    static func lease(expiring expires: Date, in sessions: TokenSessions) -> TokenLease {
        let grant = AccessGrant(subject: "nurse", roles: [.viewer], scope: .all, tokenID: "t", expires: expires)
        let lease = TokenLease(grant, acting: .viewer)
        sessions.add(lease)
        return lease
    }

    /// Runs `body` with the sessions' keeper running, and stops it after.
    static func keeping(_ body: (TokenSessions, ManualRelayClock, Date) async throws -> Void) async throws {
        let clock = ManualRelayClock()
        let start = clock.now
        let sessions = TokenSessions(clock: clock)
        let keeper = Task { try await sessions.run() }
        defer { keeper.cancel() }
        try await body(sessions, clock, start)
        keeper.cancel()
        try await keeper.value
    }

    @Test func eachLeaseIsWarnedItsLeadBeforeExpAndEndedAtExpByOneTask() async throws {
        try await Self.keeping { sessions, clock, start in
            let told = Told()
            for (name, seconds) in [("a", 10.0), ("b", 20), ("c", 30)] {
                sessions.watch(Self.lease(expiring: start + seconds, in: sessions), told.watch(name))
            }
            try await told.step(clock, from: start + 8, to: start + 8, until: 1)
            try await clock.waitForSleeper(until: start + 10)
            #expect(told.all == ["a: warned"], "nothing ends before exp")
            try await told.step(clock, from: start + 10, to: start + 10, until: 2)
            // A jump past b's warning and exp: it is ended, not warned of what has already come.
            try await told.step(clock, from: start + 18, to: start + 25, until: 3)
            try await clock.waitForSleeper(until: start + 28)
            #expect(told.all == ["a: warned", "a: expired", "b: expired"])
            // Less than the lead left when it starts: warned at once.
            sessions.watch(Self.lease(expiring: start + 26, in: sessions), told.watch("d"))
            #expect(told.all.last == "d: warned")
            for (moment, count) in [(26.0, 5), (28, 6), (30, 7)] {
                try await told.step(clock, from: start + moment, to: start + moment, until: count)
            }
            #expect(told.all == ["a: warned", "a: expired", "b: expired", "d: warned", "d: expired", "c: warned", "c: expired"])
        }
    }

    @Test func aLeaseDueSoonerThanTheKeepersWaitWakesIt() async throws {
        try await Self.keeping { sessions, clock, start in
            let told = Told()
            sessions.watch(Self.lease(expiring: start + 100, in: sessions), told.watch("later"))
            try await clock.waitForSleeper(until: start + 98)
            sessions.watch(Self.lease(expiring: start + 10, in: sessions), told.watch("sooner"))
            try await clock.waitForSleeper(until: start + 8)
            #expect(!clock.isWaiting(until: start + 98), "the keeper waits for one moment, the earliest")
            clock.advance(to: start + 8)
            try await told.waitFor(1)
            #expect(told.all == ["sooner: warned"])
        }
    }

    @Test func anEndedSocketIsToldNothingMoreAndARevokedOneIsToldOnce() async throws {
        try await Self.keeping { sessions, clock, start in
            let told = Told()
            let removed = Self.lease(expiring: start + 10, in: sessions)
            sessions.watch(removed, told.watch("removed"))
            let revoked = Self.lease(expiring: start + 10, in: sessions)
            sessions.watch(revoked, told.watch("revoked"))
            sessions.watch(Self.lease(expiring: start + 50, in: sessions), told.watch("marker"))
            try await clock.waitForSleeper(until: start + 8)
            sessions.remove(removed)
            revoked.end(.revoked)
            try await told.waitFor(1)
            clock.advance(to: start + 20)
            // The keeper has passed every moment before 20 s once it waits for the marker's warning.
            try await clock.waitForSleeper(until: start + 48)
            #expect(told.all == ["revoked: revoked"])
            #expect(sessions.count == 2)
        }
    }

    @Test func aTokenRevokedBeforeItsSocketWatchesIsToldWhenItDoes() async throws {
        try await Self.keeping { sessions, clock, start in
            let told = Told()
            let lease = Self.lease(expiring: start + 10, in: sessions)
            lease.end(.revoked)
            sessions.watch(lease, told.watch("early"))
            try await told.waitFor(1)
            #expect(told.all == ["early: revoked"])
        }
    }
}
