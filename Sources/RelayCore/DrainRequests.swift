import NIOCore

/// Viewers whose writers must be woken, collected under the hub's lock and
/// submitted after it: one `execute` per event loop, however many viewers.
///
/// A loop drains its writers in turns of about `turn` (a turn ends after
/// the writer that used it up; time on the monotonic clock). A
/// frame for 500 viewers on one loop is 500 socket writes (2.5 ms here,
/// more for big frames or a slower machine) and, run as one task, a
/// dashboard's ping or ack read on that loop waits behind all of them:
/// SwiftNIO runs every task that is due, ones queued meanwhile included,
/// before it reads its sockets again. The next turn is scheduled a moment
/// ahead instead, so it is not yet due when the loop looks for tasks, and
/// the loop reads what arrived before it writes on.
struct DrainRequests {
    private var byLoop: [ObjectIdentifier: (any EventLoop, [ViewerChannelHandler])] = [:]

    /// How long a loop writes before it reads again.
    static let turn = TimeAmount.microseconds(500)
    /// How far ahead the next turn is scheduled: only so that it is not due
    /// at once; the loop runs it as soon as it has read what is waiting.
    static let pause = TimeAmount.microseconds(20)

    mutating func add(_ viewer: ViewerHub.Viewer) {
        // A writer not yet in its pipeline ignores this and drains when added.
        let key = ObjectIdentifier(viewer.eventLoop)
        if byLoop[key] == nil { byLoop[key] = (viewer.eventLoop, []) }
        byLoop[key]!.1.append(viewer.writer)
    }

    func submit() {
        for (loop, writers) in byLoop.values {
            loop.execute { Self.inTurns(writers[...], on: loop) { $0.drain() } }
        }
    }

    /// On `loop`: runs `body` on each item in order until `turn` is used,
    /// then schedules the rest `pause` ahead, and so on until none is left.
    static func inTurns<Item: Sendable>(_ items: ArraySlice<Item>, on loop: any EventLoop, turn: TimeAmount = turn,
                                        _ body: @escaping @Sendable (Item) -> Void) {
        let end = NIODeadline.now() + turn
        var index = items.startIndex
        while index < items.endIndex {
            body(items[index])
            index += 1
            if index < items.endIndex, NIODeadline.now() >= end {
                let rest = items[index...]
                loop.scheduleTask(in: pause) { inTurns(rest, on: loop, turn: turn, body) }
                return
            }
        }
    }
}
