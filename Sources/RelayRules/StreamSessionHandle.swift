import Pipeline
import NIOConcurrencyHelpers

/// The hub's and housekeeping's way to reach a streamer's connection from
/// outside its task: send it a control message or ask it to close. The
/// connection's own task owns the socket and carries the commands out.
package final class StreamSessionHandle: Sendable {
    package enum Command: Sendable {
        case send(String)
        case close(StreamEndReason)
    }

    package let id: UInt64
    package let remoteAddress: String
    private let commands: AsyncStream<Command>.Continuation
    private let requestedEnd = NIOLockedValueBox<StreamEndReason?>(nil)

    package init(id: UInt64, remoteAddress: String, commands: AsyncStream<Command>.Continuation) {
        self.id = id
        self.remoteAddress = remoteAddress
        self.commands = commands
    }

    package func send(_ text: String) {
        commands.yield(.send(text))
    }

    /// Asks the connection to close; the first reason given is the one reported.
    package func close(_ reason: StreamEndReason) {
        let first = requestedEnd.withLockedValue { current -> Bool in
            guard current == nil else { return false }
            current = reason
            return true
        }
        if first { commands.yield(.close(reason)) }
    }

    /// Why the server closed it, or nil if the client went away by itself.
    package var endReason: StreamEndReason? { requestedEnd.withLockedValue { $0 } }
}
