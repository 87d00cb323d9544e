import NIOConcurrencyHelpers
import RelayRules

/// One stream's check of whose frames may still be offered (its
/// `StreamHolding`), with a lock of its own, so that offering a frame to N
/// viewers' mailboxes does not hold the hub's lock, and acks, pongs, view
/// hints and `/api/viewers` do not queue behind fan-out.
///
/// How "no frame after its stream's `stream_ended`" is kept: the hub updates
/// a stream's gate under its own lock *before* it applies the mailbox
/// actions of the same event (a `stream_ended`, a `finish`). A frame's fan-out
/// checks the gate and makes all its offers under the gate's lock. So
/// either the fan-out's offers all come before the gate closes, and so
/// before the `stream_ended` queued after that, or the fan-out finds the
/// gate closed and offers nothing. Lock order: hub, then gate, then mailbox.
///
/// The gate's latest seq follows the frames offered through it; the hub
/// copies the state's only when it makes a replay (or the holder changes).
/// So a frame costs the gate's lock for its own offers only, and a replay
/// still never reaches a viewer after a newer frame: it is refused once
/// that frame's offers were made, or offered before them.
final class StreamGate: Sendable {
    private let state: NIOLockedValueBox<StreamHolding?>

    init(_ state: StreamHolding?) {
        self.state = NIOLockedValueBox(state)
    }

    /// Called under the hub's lock; waits for a fan-out in progress to
    /// finish its offers. For the same holder a newer frame already offered
    /// stays the latest.
    func update(_ new: StreamHolding?) {
        state.withLockedValue { state in
            guard let new, let old = state, old.holder == new.holder else { state = new; return }
            state = StreamHolding(holder: new.holder, latestSeq: [old.latestSeq, new.latestSeq].compactMap { $0 }.max())
        }
    }

    /// Runs `offers` of frame `seq` under the gate's lock if `ticket` is
    /// still admitted; nil if it is not.
    func ifAdmitted<Result>(_ ticket: FrameTicket, seq: UInt64, _ offers: () -> Result) -> Result? {
        state.withLockedValue { state in
            guard let current = state, current.admits(ticket) else { return nil }
            if ticket.replayOf == nil, current.latestSeq.map({ $0 < seq }) ?? true {
                state = StreamHolding(holder: current.holder, latestSeq: seq)
            }
            return offers()
        }
    }
}
