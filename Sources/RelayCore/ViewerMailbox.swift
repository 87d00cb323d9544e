import Foundation
import NIOCore
import Pipeline
import NIOConcurrencyHelpers

/// What a viewer's connection sends next.
struct OutboundItem: Sendable {
    enum Kind: Sendable { case control, frame(streamID: String, rendition: RenditionKind) }
    let kind: Kind
    /// The whole WebSocket message (`WebSocketWire`), written as it is.
    let bytes: ByteBuffer
    /// For a frame: when the relay received it (ms since epoch), to measure its age when written.
    var receivedAt: Int64? = nil
    /// For a frame: its seq, which a credit viewer's ack names.
    var seq: UInt64? = nil
}

/// One viewer's outbox: a lossless, ordered queue for control messages and,
/// per stream, one slot holding the newest frame not yet written (latest
/// wins). Publishing never waits: it replaces the slot and, when the outbox
/// was idle, asks for a drain on the viewer's event loop.
///
/// Control messages go out before frames, and `stream_ended` clears its
/// stream's slot, so a viewer never sees a frame of a stream after its end.
/// It also keeps the per-viewer delivery statistics and how long the socket
/// has refused data, which the slow (`SlowViewerVerdict`) and dead-viewer
/// decisions use.
package final class ViewerMailbox: Sendable {
    package struct Statistics: Sendable {
        package var delivered = 0
        package var replaced = 0
        /// Frames offered / replaced in the current measuring window.
        var windowOffered = 0
        var windowReplaced = 0
        /// Bytes handed to the socket.
        package var bytesWritten = 0
        /// Ages of the frames most recently written (now − `received_at`).
        package var ages = FrameAges()
        /// The link under the socket, as TCP reports it.
        package var link = ViewerLink()
        package var lossPercent: Double {
            let total = delivered + replaced
            return total == 0 ? 0 : Double(replaced) * 100 / Double(total)
        }
    }

    private struct State {
        /// Room for a few: most of the time it holds none, and NIO's default
        /// (16) costs an idle viewer 1.3 KB. It grows when it must.
        var control = CircularBuffer<OutboundItem>(initialCapacity: 4)
        var slots: [String: OutboundItem] = [:]
        /// Streams with a pending frame, oldest first, so streams take turns.
        var order: [String] = []
        /// A drain has been requested and has not started yet.
        var drainRequested = false
        var finished = false
        /// Since when the socket has refused data while items wait.
        var blockedSince: ContinuousClock.Instant?
        /// With credits: per stream, the seqs written and not yet acknowledged.
        var unacked: [String: [UInt64]] = [:]
        /// Per stream with a frame-rate cap: when its next frame is due.
        var nextDue: [String: ContinuousClock.Instant] = [:]
        var stats = Statistics()
    }

    private let state = NIOLockedValueBox(State())
    /// With `flow=credit`, how many frames of a stream may be unacknowledged;
    /// nil: frames go as fast as the socket takes them.
    let creditLimit: Int?

    /// Two: one being drawn while the next crosses the link.
    package static let defaultCredits = 2

    /// False for a viewer whose wire has no place for the relay's text
    /// messages (MJPEG over HTTP): they are not queued.
    let controlMessages: Bool

    package init(creditLimit: Int? = nil, controlMessages: Bool = true) {
        self.creditLimit = creditLimit
        self.controlMessages = controlMessages
    }

    /// Control messages waiting to be written.
    package var controlBacklog: Int { state.withLockedValue { $0.control.count } }

    /// Queues a control message, never dropped. True when the caller must
    /// request a drain (the outbox was idle).
    @discardableResult
    func enqueueControl(_ text: String) -> Bool {
        guard controlMessages else { return false }
        let item = OutboundItem(kind: .control, bytes: WebSocketWire.text(text))
        return state.withLockedValue { s in
            guard !s.finished else { return false }
            s.control.append(item)
            return Self.requestDrain(&s)
        }
    }

    /// Queues `stream_ended` and forgets any frame of that stream not yet
    /// written. Without control messages (an MJPEG viewer watches one
    /// stream), the stream's end is the viewer's: the mailbox is finished.
    @discardableResult
    func enqueueStreamEnded(_ streamID: String, text: String) -> Bool {
        let item = OutboundItem(kind: .control, bytes: WebSocketWire.text(text))
        return state.withLockedValue { s in
            guard !s.finished else { return false }
            if s.slots.removeValue(forKey: streamID) != nil { s.order.removeAll { $0 == streamID } }
            s.unacked[streamID] = nil
            s.nextDue[streamID] = nil
            if controlMessages { s.control.append(item) } else { s.finished = true }
            return Self.requestDrain(&s)
        }
    }

    /// What became of an offered frame.
    struct Offer {
        /// The caller must request a drain (the outbox was idle).
        var needsDrain = false
        /// It took the place of an older frame of its stream that was never
        /// written (latest wins): `framepipe_frames_replaced_total`.
        var replacedOlder = false
    }

    /// Puts the newest frame of `streamID` in its slot, replacing an unsent
    /// one. With `pacing` (the policy capped this stream's frame rate: the
    /// interval, and the frame's arrival), a frame that comes before the
    /// stream's next one is due is not offered at all while the slot is
    /// empty: the next due one is fresh, and nothing piles up in front of a
    /// link that cannot carry more. One that finds a frame still waiting
    /// replaces it, due or not, so what is written is always the newest.
    func offerFrame(streamID: String, rendition: RenditionKind, bytes: ByteBuffer, receivedAt: Int64, seq: UInt64,
                            pacing: (interval: Duration, at: ContinuousClock.Instant)? = nil) -> Offer {
        let item = OutboundItem(kind: .frame(streamID: streamID, rendition: rendition), bytes: bytes,
                                receivedAt: receivedAt, seq: seq)
        return state.withLockedValue { s in
            guard !s.finished else { return Offer() }
            if let pacing {
                // A frame still waiting in the slot is replaced whether due or not (the
                // one written is always the newest), and the cap's schedule stands.
                if s.slots[streamID] == nil {
                    if let due = s.nextDue[streamID], pacing.at < due { return Offer() }
                    // A tenth early still counts, so 30 fps capped at 10 takes every third frame, not every fourth.
                    s.nextDue[streamID] = pacing.at + pacing.interval * 0.9
                }
            } else if !s.nextDue.isEmpty {
                s.nextDue[streamID] = nil  // the cap was lifted
            }
            s.stats.windowOffered += 1
            var offer = Offer()
            if s.slots.updateValue(item, forKey: streamID) != nil {
                s.stats.replaced += 1
                s.stats.windowReplaced += 1
                offer.replacedOlder = true
            } else {
                s.order.append(streamID)
            }
            offer.needsDrain = Self.requestDrain(&s)
            return offer
        }
    }

    private static func requestDrain(_ s: inout State) -> Bool {
        guard !s.drainRequested else { return false }
        s.drainRequested = true
        return true
    }

    /// Called by the drain as it starts: later offers request a new one.
    func drainStarted() {
        state.withLockedValue { $0.drainRequested = false }
    }

    /// The next item to write, or nil when nothing waits (`controlOnly`:
    /// no frame may go now); a frame's age at `nowMilliseconds` (the wall
    /// clock, as `received_at`) is recorded.
    func poll(nowMilliseconds: Int64 = Date().millisecondsSince1970, controlOnly: Bool = false) -> OutboundItem? {
        state.withLockedValue { s in
            if let item = s.control.popFirst() {
                s.stats.bytesWritten += item.bytes.readableBytes
                return item
            }
            if controlOnly { return nil }
            // The oldest waiting stream that may be sent: with credits, one
            // whose viewer has acknowledged enough; the others keep waiting
            // in their slots, where newer frames replace them.
            // A finished mailbox flushes what waits, credit or not.
            let limit = s.finished ? .max : creditLimit ?? .max
            guard let index = s.order.firstIndex(where: { (s.unacked[$0]?.count ?? 0) < limit }) else { return nil }
            let id = s.order.remove(at: index)
            guard let item = s.slots.removeValue(forKey: id) else { return nil }
            if creditLimit != nil, let seq = item.seq { s.unacked[id, default: []].append(seq) }
            s.stats.delivered += 1
            s.stats.bytesWritten += item.bytes.readableBytes
            if let receivedAt = item.receivedAt { s.stats.ages.record(milliseconds: nowMilliseconds - receivedAt) }
            return item
        }
    }

    /// What an ack did.
    package struct AckResult: Equatable {
        /// It returned at least one credit: a frame the relay wrote was drawn.
        var acknowledged = false
        /// The caller must request a drain (a frame waited for that credit).
        var needsDrain = false

        init(acknowledged: Bool = false, needsDrain: Bool = false) {
            self.acknowledged = acknowledged
            self.needsDrain = needsDrain
        }
    }

    /// The viewer has drawn `streamID`'s frames up to `seq`: their credits return.
    package func ack(streamID: String, seq: UInt64) -> AckResult {
        guard creditLimit != nil else { return AckResult() }
        return state.withLockedValue { s in
            guard let pending = s.unacked[streamID] else { return AckResult() }
            let remaining = pending.filter { $0 > seq }
            s.unacked[streamID] = remaining.isEmpty ? nil : remaining
            guard remaining.count < pending.count else { return AckResult() }
            guard s.slots[streamID] != nil, !s.finished else { return AckResult(acknowledged: true) }
            return AckResult(acknowledged: true, needsDrain: Self.requestDrain(&s))
        }
    }

    /// A reading of the socket's TCP state (see `ViewerLink`).
    @discardableResult
    func recordLink(_ sample: ViewerLink.Reading) -> ViewerLink {
        state.withLockedValue { s in
            s.stats.link.record(sample)
            return s.stats.link
        }
    }

    /// Frames and a read probe were written to a paced reader (`ViewerLink.framesWritten`).
    func framesWrittenToPacedReader(now: ContinuousClock.Instant = .now) {
        state.withLockedValue { $0.stats.link.framesWritten(at: now) }
    }

    /// The paced reader answered its read probe (`ViewerLink.readConfirmed`).
    func readConfirmed(now: ContinuousClock.Instant = .now) {
        state.withLockedValue { $0.stats.link.readConfirmed(at: now) }
    }

    /// A paced reader has frames it has not read yet.
    var awaitingRead: Bool { state.withLockedValue { $0.stats.link.awaitingReadSince != nil } }

    /// Records whether the drain stopped because the socket is full; a
    /// drain that wrote something restarts the clock (the socket accepted data).
    func drainStopped(blocked: Bool, wrote: Bool, now: ContinuousClock.Instant = .now) {
        state.withLockedValue { s in
            if blocked {
                if s.blockedSince == nil || wrote { s.blockedSince = now }
            } else {
                s.blockedSince = nil
            }
        }
    }

    /// How long the viewer has made no progress while items waited: the
    /// socket refused more, and the link under it acknowledged nothing
    /// either. A large frame crossing a slow link is progress; without TCP
    /// readings (not a TCP socket), the refusal alone counts.
    func stalledFor(now: ContinuousClock.Instant = .now) -> (stalled: Duration, link: ViewerLink)? {
        state.withLockedValue { s in
            guard let blockedSince = s.blockedSince else { return nil }
            let since = max(blockedSince, s.stats.link.lastProgress ?? blockedSince)
            return (now - since, s.stats.link)
        }
    }

    /// A frame waits in a slot (sendable or not).
    var hasFramesWaiting: Bool { state.withLockedValue { !$0.order.isEmpty } }

    /// No more items are accepted; what is queued is still drained.
    func finish() {
        state.withLockedValue { $0.finished = true }
    }

    var isFinished: Bool { state.withLockedValue { $0.finished } }

    /// True once finished and everything queued has been taken.
    var isFinishedAndDrained: Bool {
        state.withLockedValue { $0.finished && $0.control.isEmpty && $0.order.isEmpty }
    }

    /// Discards everything pending (the viewer is being dropped).
    package func discardPending() {
        state.withLockedValue { s in
            s.control.removeAll()
            s.slots.removeAll()
            s.order.removeAll()
        }
    }

    /// The statistics, with the measuring window as it stands (what was
    /// offered and replaced in it, which the hub's `SlowViewerVerdict`
    /// judges); `closingWindow` then starts a new window, for the figures
    /// and for the link, in the same lock.
    func statistics(closingWindow: Bool) -> Statistics {
        state.withLockedValue { s in
            let stats = s.stats
            if closingWindow {
                s.stats.windowOffered = 0
                s.stats.windowReplaced = 0
                s.stats.link.openWindow()
            }
            return stats
        }
    }

    package var statistics: Statistics { state.withLockedValue { $0.stats } }
}
