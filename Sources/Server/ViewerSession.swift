import Foundation
import Access
import HummingbirdWebSocket
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOWebSocket
import Pipeline
import RelayCore

/// One admitted viewer's session: what `ViewerConnection.run` keeps across
/// its awaits, in one object, so the async frames a viewer holds for as
/// long as it watches stay small (most of an idle viewer's memory is its
/// tasks' frames).
final class ViewerSession: Sendable {
    let hub: ViewerHub
    let viewer: ViewerHub.Viewer
    let ending: ViewerSessionEnding
    /// With auth on: the token the socket was let in with.
    let lease: TokenLease?
    let logger: Logger
    let identity: AuditEvent.Identity
    let requested: [String]?
    let started = ContinuousClock.now

    init(hub: ViewerHub, viewer: ViewerHub.Viewer, ending: ViewerSessionEnding, lease: TokenLease?,
         logger: Logger, identity: AuditEvent.Identity, requested: [String]?) {
        self.hub = hub
        self.viewer = viewer
        self.ending = ending
        self.lease = lease
        self.logger = logger
        self.identity = identity
        self.requested = requested
    }

    // MARK: Told by the token's lease

    // Methods of the session, not closures: the lease's two callbacks then
    // hold the session itself, where closures capturing the hub, the viewer
    // and the session each took an object of their own (about 600 bytes
    // a viewer with auth on, measured with heaptrack).

    /// The token runs out soon: the viewer is told, so it can refresh it.
    func tokenExpiring(_ grant: AccessGrant, now: Date) {
        hub.send(to: viewer, TokenLease.expiringMessage(grant, now: now))
    }

    /// The token ended (expired or revoked). Nothing queued is sent after
    /// the end: the Close (with the token's code) goes once the mailbox is
    /// finished and drained.
    func tokenEnded(_ end: TokenEnd) {
        ending.relayEnds(ViewerLeaveReason(end))
        viewer.mailbox.discardPending()
        hub.removeViewer(viewer.id, reason: ViewerLeaveReason(end))
    }

    /// Puts the writer on the socket's side of the WebSocket encoder (the
    /// mailbox holds whole WebSocket messages) and the close watcher after
    /// the decoder (it sees the viewer's Close before it is answered).
    /// False when the channel went first.
    func joinPipeline(of channel: any Channel) async -> Bool {
        let writer = viewer.writer
        do {
            try await channel.eventLoop.submit {
                let pipeline = channel.pipeline.syncOperations
                try pipeline.addHandler(writer, position: .before(pipeline.handler(type: WebSocketFrameEncoder.self)))
                try pipeline.addHandler(ViewerCloseWatcher(writer: writer),
                                        position: .after(pipeline.handler(type: ByteToMessageHandler<WebSocketFrameDecoder>.self)))
            }.get()
            return true
        } catch {
            return false
        }
    }
}

/// How a viewer's session ends when the relay ends it: once its mailbox
/// is finished and drained (its streams ended, the relay shuts down, its
/// token ended), the relay sends the WebSocket Close, with the token's
/// code if that was the cause; the viewer's answer then ends the reading
/// in `ViewerConnection.run`, and a viewer that does not answer is cut off
/// after `closeTimeout`. Whichever end comes first names the session's
/// end in the log and the audit trail.
final class ViewerSessionEnding: Sendable {
    /// What hummingbird-websocket waits for an answer to its own Close (`RelayServer`).
    static let closeTimeout = RelayServer.webSocketCloseTimeout

    private struct State {
        /// The relay's reason, once it ended the session.
        var reason: ViewerLeaveReason?
        var closing = false
        /// The reading ended: the connection is going anyway.
        var over = false
        /// With the viewer's id, once it has one.
        var logger: Logger
    }

    private let state: NIOLockedValueBox<State>
    private let outbound: WebSocketOutboundWriter
    private let channel: any Channel
    private let lease: TokenLease?
    private let clock: any RelayClock

    init(outbound: WebSocketOutboundWriter, channel: any Channel, lease: TokenLease?, clock: any RelayClock, logger: Logger) {
        self.state = NIOLockedValueBox(State(logger: logger))
        self.outbound = outbound
        self.channel = channel
        self.lease = lease
        self.clock = clock
    }

    /// The viewer is registered: its lines name it.
    func named(_ logger: Logger) {
        state.withLockedValue { $0.logger = logger }
    }

    /// The relay ends the session for `reason` (its token ended); the
    /// Close follows when the mailbox has drained.
    func relayEnds(_ reason: ViewerLeaveReason) {
        state.withLockedValue { if $0.reason == nil { $0.reason = reason } }
    }

    /// Called on the event loop when the finished mailbox is empty.
    func mailboxDrained() {
        let logger = state.withLockedValue { state -> Logger? in
            guard !state.over, !state.closing else { return nil }
            state.closing = true
            if state.reason == nil { state.reason = .finished }
            return state.logger
        }
        guard let logger else { return }
        let (outbound, channel, clock) = (outbound, channel, clock)
        let token = lease?.ended
        // Lives only until the Close is answered (or not), not for the session.
        let closing = Task {
            if let token {
                try? await outbound.close(.unknown(token.closeCode), reason: token.reason)
            } else {
                try? await outbound.close(.normalClosure, reason: nil)
            }
            do { try await clock.sleep(for: Self.closeTimeout) } catch { return }
            logger.info("viewer did not answer the relay's Close; its connection is closed",
                        metadata: ["waited": "\(Self.closeTimeout)"])
            channel.close(promise: nil)
        }
        channel.closeFuture.whenComplete { _ in closing.cancel() }
    }

    /// The reading ended with `read`; the session's end is the relay's
    /// reason if it ended the session first.
    func over(read: ViewerLeaveReason) -> ViewerLeaveReason {
        state.withLockedValue { state in
            state.over = true
            return state.reason ?? read
        }
    }
}
