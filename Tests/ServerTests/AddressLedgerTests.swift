@testable import FramepipeServer
@testable import Access
import Testing

/// The per-address bookkeeping on its own: connection counts, upgrade
/// buckets, and that addresses are forgotten once they no longer matter.
@Suite("Address ledger")
struct AddressLedgerTests {
    @Test func countsConnectionsPerAddressAndFreesTheSlotOnClose() {
        var limits = RelayLimits()
        limits.maxConnectionsPerAddress = 2
        let ledger = AddressLedger(limits: limits)
        #expect(ledger.openConnection(from: "10.0.0.1"))
        #expect(ledger.openConnection(from: "10.0.0.1"))
        #expect(!ledger.openConnection(from: "10.0.0.1"))
        #expect(ledger.openConnection(from: "10.0.0.2"), "another address has its own share")
        ledger.closeConnection(from: "10.0.0.1")
        #expect(ledger.openConnection(from: "10.0.0.1"))
    }

    @Test func upgradesComeFromABucketOfTwiceTheRate() {
        var limits = RelayLimits()
        limits.upgradesPerSecondPerAddress = 3
        let clock = ManualRelayClock()
        let ledger = AddressLedger(limits: limits, now: { clock.instant })
        let allowed = (0..<10).filter { _ in ledger.takeUpgrade(from: "10.0.0.1") }.count
        #expect(allowed == 6)
        #expect(ledger.takeUpgrade(from: "10.0.0.2"))
        // A third of a second later one more token is back, and only one.
        clock.advance(by: .milliseconds(334))
        #expect(ledger.takeUpgrade(from: "10.0.0.1"))
        #expect(!ledger.takeUpgrade(from: "10.0.0.1"))
    }

    @Test func remembersABoundedNumberOfIdleAddresses() {
        var limits = RelayLimits()
        limits.upgradesPerSecondPerAddress = 100  // a used token is back in 10 ms
        let clock = ManualRelayClock()
        let ledger = AddressLedger(limits: limits, now: { clock.instant })
        // Three waves of strangers, each upgrading once and leaving with a
        // part-used bucket that nobody will look at again.
        for wave in 0..<3 {
            for i in 0..<AddressLedger.sweepThreshold {
                let address = "10.\(wave).\(i / 256).\(i % 256)"
                _ = ledger.openConnection(from: address)
                _ = ledger.takeUpgrade(from: address)
                ledger.closeConnection(from: address)
            }
            clock.advance(by: .milliseconds(30))
        }
        #expect(ledger.trackedAddresses <= AddressLedger.sweepThreshold + 1, "\(ledger.trackedAddresses)")
    }
}
