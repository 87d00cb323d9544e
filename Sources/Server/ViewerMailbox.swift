import NIOCore
import Synchronization

/// What a viewer's writer sends next.
struct OutboundItem: Sendable {
    enum Kind: Sendable { case control, frame(streamID: String, rendition: RenditionKind) }
    let kind: Kind
    let bytes: ByteBuffer
    let isText: Bool
}

/// One viewer's outbox: a lossless, ordered queue for control messages and,
/// per stream, one slot holding the newest frame not yet written (latest
/// wins). Publishing never waits: it replaces the slot and wakes the writer.
///
/// Control messages go out before frames, and `stream_ended` clears its
/// stream's slot, so a viewer never sees a frame of a stream after its end.
/// It also keeps the per-viewer delivery statistics the slow-viewer
/// decision and `/api/viewers` use.
final class ViewerMailbox: Sendable {
    struct Statistics: Sendable {
        var delivered = 0
        var replaced = 0
        /// Frames offered / replaced in the current measuring window.
        var windowOffered = 0
        var windowReplaced = 0
        var slow = false
        /// Consecutive windows with low loss while slow (hysteresis).
        var goodWindows = 0
        var lossPercent: Double {
            let total = delivered + replaced
            return total == 0 ? 0 : Double(replaced) * 100 / Double(total)
        }
    }

    private struct State {
        var control = CircularBuffer<OutboundItem>()
        var slots: [String: OutboundItem] = [:]
        /// Streams with a pending frame, oldest first, so streams take turns.
        var order: [String] = []
        var waiter: CheckedContinuation<OutboundItem?, Never>?
        var finished = false
        var writeStartedAt: ContinuousClock.Instant?
        var stats = Statistics()
    }

    private let state = Mutex(State())

    /// Queues a control message; never dropped.
    func enqueueControl(_ text: String) {
        let item = OutboundItem(kind: .control, bytes: ByteBuffer(string: text), isText: true)
        let waiter = state.withLock { s -> CheckedContinuation<OutboundItem?, Never>? in
            guard !s.finished else { return nil }
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.control.append(item)
            return nil
        }
        waiter?.resume(returning: item)
    }

    /// Queues `stream_ended` and forgets any frame of that stream not yet written.
    func enqueueStreamEnded(_ streamID: String, text: String) {
        state.withLock { s in
            if s.slots.removeValue(forKey: streamID) != nil { s.order.removeAll { $0 == streamID } }
        }
        enqueueControl(text)
    }

    /// Puts the newest frame of `streamID` in its slot, replacing an unsent one.
    func offerFrame(streamID: String, rendition: RenditionKind, bytes: ByteBuffer, isText: Bool) {
        let item = OutboundItem(kind: .frame(streamID: streamID, rendition: rendition), bytes: bytes, isText: isText)
        let waiter = state.withLock { s -> CheckedContinuation<OutboundItem?, Never>? in
            guard !s.finished else { return nil }
            s.stats.windowOffered += 1
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            if s.slots.updateValue(item, forKey: streamID) != nil {
                s.stats.replaced += 1
                s.stats.windowReplaced += 1
            } else {
                s.order.append(streamID)
            }
            return nil
        }
        waiter?.resume(returning: item)
    }

    /// The next item to write, waiting for one; nil once finished and drained.
    func next() async -> OutboundItem? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<OutboundItem?, Never>) in
                let ready: OutboundItem?? = state.withLock { s in
                    if let item = s.control.popFirst() { return .some(item) }
                    if !s.order.isEmpty {
                        let id = s.order.removeFirst()
                        return .some(s.slots.removeValue(forKey: id))
                    }
                    if s.finished || Task.isCancelled { return .some(nil) }
                    s.waiter = continuation
                    return .none
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            finish()
        }
    }

    /// No more items will be accepted; the writer drains what is queued and stops.
    func finish() {
        let waiter = state.withLock { s -> CheckedContinuation<OutboundItem?, Never>? in
            s.finished = true
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// Discards everything pending (the viewer is being dropped).
    func discardPending() {
        state.withLock { s in
            s.control.removeAll()
            s.slots.removeAll()
            s.order.removeAll()
        }
    }

    func writeStarted(at now: ContinuousClock.Instant = .now) {
        state.withLock { $0.writeStartedAt = now }
    }

    func writeFinished(_ item: OutboundItem) {
        state.withLock { s in
            s.writeStartedAt = nil
            if case .frame = item.kind { s.stats.delivered += 1 }
        }
    }

    /// How long the current write has been waiting on the socket, if one is.
    func writeStalledFor(now: ContinuousClock.Instant = .now) -> Duration? {
        state.withLock { s in s.writeStartedAt.map { now - $0 } }
    }

    /// Closes the measuring window and updates the slow flag with hysteresis:
    /// slow after one window losing more than `threshold` of its frames;
    /// back to normal after three windows losing under a quarter of that.
    /// Returns the new flag when it changed.
    func updateSlowness(threshold: Double, minimumOffered: Int = 10) -> Bool? {
        state.withLock { s in
            defer { s.stats.windowOffered = 0; s.stats.windowReplaced = 0 }
            guard s.stats.windowOffered >= minimumOffered else { return nil }
            let loss = Double(s.stats.windowReplaced) / Double(s.stats.windowOffered)
            if !s.stats.slow, loss > threshold {
                s.stats.slow = true
                s.stats.goodWindows = 0
                return true
            }
            if s.stats.slow {
                s.stats.goodWindows = loss < threshold / 4 ? s.stats.goodWindows + 1 : 0
                if s.stats.goodWindows >= 3 {
                    s.stats.slow = false
                    return false
                }
            }
            return nil
        }
    }

    var statistics: Statistics { state.withLock { $0.stats } }
    var isSlow: Bool { state.withLock { $0.stats.slow } }
}
