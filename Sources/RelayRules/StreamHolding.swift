/// Who may still have a stream's frames offered to viewers, and which frame
/// is its latest: what a `FrameTicket` is checked against. The part of
/// `RelayState` the check reads (`RelayState.streamHolding(of:)`), as a
/// value a `StreamGate` can hold.
package struct StreamHolding: Equatable, Sendable {
    package let holder: FrameTicket.Holder
    package let latestSeq: UInt64?

    package init(holder: FrameTicket.Holder, latestSeq: UInt64?) {
        self.holder = holder
        self.latestSeq = latestSeq
    }

    /// A frame accepted from `ticket.holder` is offered while that holder
    /// still serves the stream; a replayed frame only while it is still the latest.
    package func admits(_ ticket: FrameTicket) -> Bool {
        guard ticket.holder == holder else { return false }
        if let replayed = ticket.replayOf { return latestSeq == replayed }
        return true
    }
}
