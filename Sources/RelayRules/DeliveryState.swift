/// Who may still have a stream's frames offered to viewers, and which frame
/// is its latest: what a `DeliveryTicket` is checked against. The part of
/// `RelayState` the check reads (`RelayState.deliveryState(of:)`), as a
/// value a `DeliveryGate` can hold.
package struct DeliveryState: Equatable, Sendable {
    package let holder: DeliveryTicket.Holder
    package let latestSeq: UInt64?

    package init(holder: DeliveryTicket.Holder, latestSeq: UInt64?) {
        self.holder = holder
        self.latestSeq = latestSeq
    }

    /// A frame accepted from `ticket.holder` is offered while that holder
    /// still serves the stream; a replayed frame only while it is still the latest.
    package func admits(_ ticket: DeliveryTicket) -> Bool {
        guard ticket.holder == holder else { return false }
        if let replayed = ticket.replayOf { return latestSeq == replayed }
        return true
    }
}
