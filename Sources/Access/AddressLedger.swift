import Pipeline
import NIOConcurrencyHelpers

/// Per client address: how many connections are open and how fast it has
/// been upgrading, shared by every connection so one address cannot take
/// the relay's sockets or flood it with handshakes.
package final class AddressLedger: Sendable {
    private struct Entry {
        var connections = 0
        var upgrades: TokenBucket
    }

    private let entries = NIOLockedValueBox<[String: Entry]>([:])
    static let sweepThreshold = 4096
    private let maxConnections: Int
    private let upgradeRate: Double
    /// The time the buckets refill by; tests pass a clock they move themselves.
    private let now: @Sendable () -> ContinuousClock.Instant

    package init(limits: RelayLimits, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        maxConnections = limits.maxConnectionsPerAddress
        upgradeRate = limits.upgradesPerSecondPerAddress
        self.now = now
    }

    private func newEntry() -> Entry {
        Entry(upgrades: TokenBucket(rate: upgradeRate, burst: max(1, upgradeRate * 2)))
    }

    /// Counts a new connection; false (and not counted) when the address already has its share.
    func openConnection(from address: String) -> Bool {
        entries.withLockedValue { e in
            var entry = e[address] ?? newEntry()
            if maxConnections.isReached(by: entry.connections) { return false }
            entry.connections += 1
            e[address] = entry
            return true
        }
    }

    func closeConnection(from address: String) {
        let now = now()
        entries.withLockedValue { e in
            guard var entry = e[address] else { return }
            entry.connections -= 1
            // Forget an idle address only once its upgrade bucket is full
            // again, or reconnecting would refill it early.
            if entry.connections <= 0, entry.upgrades.isFull(at: now) {
                e[address] = nil
            } else {
                e[address] = entry
            }
            // Addresses that left with a part-used bucket are never touched
            // again; past a few thousand, drop those whose bucket has refilled.
            if e.count > Self.sweepThreshold {
                e = e.filter { _, entry in var bucket = entry.upgrades; return entry.connections > 0 || !bucket.isFull(at: now) }
            }
        }
    }

    /// Addresses currently remembered (for tests and debugging).
    var trackedAddresses: Int { entries.withLockedValue { $0.count } }

    /// Takes one upgrade from the address's bucket; false when it is upgrading too fast.
    func takeUpgrade(from address: String) -> Bool {
        guard upgradeRate > 0 else { return true }
        let now = now()
        return entries.withLockedValue { e in
            var entry = e[address] ?? newEntry()
            let allowed = entry.upgrades.take(at: now)
            e[address] = entry
            return allowed
        }
    }
}
