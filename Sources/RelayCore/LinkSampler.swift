import NIOConcurrencyHelpers
import NIOCore

/// Reads the links of every viewer socket on one event loop with one timer.
///
/// Each viewer's handler had a repeated task of its own for its `TCP_INFO`
/// readings: at 400 viewers that is 800 timers scheduled and rescheduled a
/// second, 3.5% of the relay's CPU in the fan-out profile, for readings
/// that need no timer each. Handlers join their loop's sampler when added
/// and leave it when removed; everything but finding the sampler runs on
/// its loop.
final class LinkSampler: @unchecked Sendable {
    private let loop: any EventLoop  // held, so no later loop can take its identity
    private var handlers: [ObjectIdentifier: ViewerChannelHandler] = [:]

    private static let byLoop = NIOLockedValueBox<[ObjectIdentifier: LinkSampler]>([:])

    private init(loop: any EventLoop, interval: TimeAmount) {
        self.loop = loop
        loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            for handler in self.handlers.values { handler.sampleLink() }
        }
    }

    /// The sampler of `loop`, started on first use.
    static func on(_ loop: any EventLoop, interval: TimeAmount) -> LinkSampler {
        byLoop.withLockedValue { samplers in
            if let sampler = samplers[ObjectIdentifier(loop)] { return sampler }
            let sampler = LinkSampler(loop: loop, interval: interval)
            samplers[ObjectIdentifier(loop)] = sampler
            return sampler
        }
    }

    /// On the loop.
    func add(_ handler: ViewerChannelHandler) {
        loop.preconditionInEventLoop()
        handlers[ObjectIdentifier(handler)] = handler
    }

    /// On the loop.
    func remove(_ handler: ViewerChannelHandler) {
        loop.preconditionInEventLoop()
        handlers[ObjectIdentifier(handler)] = nil
    }
}
