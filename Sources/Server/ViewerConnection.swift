import Access
import Foundation
import RelayCore
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import Pipeline
import WireProtocol

/// Serves one viewer's WebSocket: registers the viewer, puts a
/// `ViewerChannelHandler` on its channel to write the mailbox out on the
/// event loop, and reads the viewer's own messages (ping, pong, subscribe,
/// set_quality, view, ack, refresh) until the viewer leaves or the server finishes with it.
///
/// Nothing here waits on the viewer's socket; housekeeping watches how long
/// the socket has refused data and cuts the viewer off after
/// `viewerSendTimeout`.
struct ViewerConnection: Sendable {
    let hub: ViewerHub
    let metrics: RelayMetrics
    let format: ViewerFormat
    let streams: Set<String>?
    let quality: QualityPreference
    let flow: FlowControl
    /// With `flow=credit`: what the viewer asked for, or the default.
    let credits: Int?
    /// `compat=patient_id` (or the relay's default): messages name each stream as `patient_id` too.
    var namesPatient = false
    let scope: StreamScope
    let tokenID: String?
    let limits: RelayLimits
    /// With auth on: the token the socket was let in with; it ends the socket when it expires or is revoked.
    let grant: AccessGrant?
    let access: SocketAccess?
    /// The real client address (behind a trusted proxy, the one it named).
    let client: String
    let audit: AuditLog?
    /// The relay's clock: the message rate limit refills on it.
    let clock: any RelayClock
    var logger: Logger

    func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, context: RelayRequestContext) async {
        guard let channel = context.channel else { return }
        let session: ViewerSession
        switch open(on: channel, outbound: outbound) {
        case .refused(let code, let reason):
            try? await outbound.close(code, reason: reason)
            return
        case .opened(let opened):
            session = opened
        }
        guard await session.joinPipeline(of: channel) else {
            close(session, reason: .closed)
            return
        }
        let read = await attend(session, inbound: inbound)
        close(session, reason: session.ending.over(read: read))
    }

    private enum Opening {
        case refused(WebSocketErrorCode, String)
        case opened(ViewerSession)
    }

    /// Registers the viewer with its writer and mailbox, or says why not.
    /// Synchronous, and apart from `run`'s awaits, so that none of this
    /// lives in the async frames a viewer keeps for its whole session.
    @inline(never)
    private func open(on channel: any Channel, outbound: WebSocketOutboundWriter) -> Opening {
        let lease = grant.flatMap { access?.lease($0, acting: .viewer) }
        let ending = ViewerSessionEnding(outbound: outbound, channel: channel, lease: lease, clock: clock, logger: logger)
        let mailbox = ViewerMailbox(creditLimit: flow == .credit ? credits ?? ViewerMailbox.defaultCredits : nil)
        let writer = ViewerChannelHandler(mailbox: mailbox, metrics: metrics) { ending.mailboxDrained() }
        let added: ViewerHub.Viewer?
        do throws(LimitRefusal) {
            added = try hub.addViewer(format: format, streams: streams, quality: quality, scope: scope, tokenID: tokenID,
                                      namesPatient: namesPatient, writer: writer, remoteAddress: client,
                                      eventLoop: channel.eventLoop, close: { channel.close(promise: nil) })
        } catch {
            lease.map { access?.sessions.remove($0) }
            // Let in by the gate together with others that took the last places.
            metrics.limitHit(error.limit)
            logger.notice("viewer refused after the upgrade: a limit is reached", metadata: ["reason": "\(error.reason)", "remote": "\(client)"])
            return .refused(.unknown(StreamerConnection.tryAgainLater), error.reason)
        }
        guard let viewer = added else {
            lease.map { access?.sessions.remove($0) }
            return .refused(.goingAway, StreamEndReason.shutdown.rawValue)
        }
        let session = ViewerSession(hub: hub, viewer: viewer, ending: ending, lease: lease,
                                    logger: logger.with(metadataKey: "viewer_id", value: "\(viewer.id)"),
                                    identity: AuditEvent.Identity(grant: grant, role: .viewer, client: client),
                                    requested: streams?.sorted())
        ending.named(session.logger)
        audit?.record(.sessionStarted(kind: .viewer, session: viewer.id, identity: session.identity, streams: session.requested))
        return .opened(session)
    }

    /// Reads the viewer until its side of the WebSocket ends: it left, or
    /// it answered the Close the relay sent when it was done with it
    /// (`ViewerSessionEnding`). The reading is the connection's own task,
    /// not a child: an idle viewer's memory is mostly its tasks' frames.
    /// Its token's time is kept by the relay's one task for all tokens.
    @inline(never)
    private func attend(_ session: ViewerSession, inbound: WebSocketInboundStream) async -> ViewerLeaveReason {
        guard let lease = session.lease, let access else {
            return await readViewer(inbound, viewer: session.viewer, lease: nil, logger: session.logger)
        }
        access.watch(lease, warningLead: access.expiryWarning, warn: session.tokenExpiring, end: session.tokenEnded)
        return await readViewer(inbound, viewer: session.viewer, lease: lease, logger: session.logger)
    }

    /// Removes the viewer, lets go of its token and records the session's end.
    @inline(never)
    private func close(_ session: ViewerSession, reason: ViewerLeaveReason) {
        let viewer = session.viewer
        hub.removeViewer(viewer.id, reason: reason)
        session.lease.map { access?.sessions.remove($0) }
        audit?.record(.sessionEnded(kind: .viewer, session: viewer.id, identity: session.identity, streams: session.requested,
                                    duration: .now - session.started, frames: viewer.mailbox.statistics.delivered,
                                    reason: reason.rawValue))
    }

    /// Reads what the viewer sends until it closes, fails or floods the
    /// relay with replies it does not read; says which.
    private func readViewer(_ inbound: WebSocketInboundStream, viewer: ViewerHub.Viewer, lease: TokenLease?,
                            logger: Logger) async -> ViewerLeaveReason {
        var allowance = limits.maxViewerMessagesPerSecond > 0
            ? TokenBucket(rate: limits.maxViewerMessagesPerSecond, burst: limits.maxViewerMessagesPerSecond * 2) : nil
        var ignored = 0
        do {
            for try await message in inbound.messages(maxSize: 64 * 1024) {
                let parsed = Self.parse(message)
                // An ack that returns a credit is as frequent as the frames the relay
                // sent (a 16-tile dashboard at 30 fps acks 480 a second): it is not
                // judged by the message limit, or the limiter would freeze the picture.
                // An ack of nothing counts like any other message.
                if case .ack(let stream, let seq)? = parsed, hub.ack(viewer, streamID: stream, seq: seq) { continue }
                if allowance?.take(at: clock.instant) == false {
                    // A flood is ignored, not answered: answering is what would pile up.
                    metrics.limitHit("viewer_messages")
                    if ignored == 0 { logger.warning("viewer sends too many messages; ignoring the excess") }
                    ignored += 1
                    continue
                }
                // Replies the viewer does not read would pile up without bound.
                if limits.maxViewerBacklog.isReached(by: viewer.mailbox.controlBacklog) {
                    metrics.limitHit("viewer_backlog")
                    return .backlog
                }
                await handle(parsed, viewer: viewer, lease: lease, logger: logger)
            }
        } catch {
            return .readFailed
        }
        return .closed
    }

    /// A text message parsed; nil for a binary one, which viewers do not send.
    private static func parse(_ message: WebSocketMessage) -> InboundMessage? {
        guard case .text(let text) = message else { return nil }
        return InboundMessage.viewer(text: text)
    }

    private func handle(_ parsed: InboundMessage?, viewer: ViewerHub.Viewer, lease: TokenLease?, logger: Logger) async {
        guard let parsed else {
            hub.send(to: viewer, WireMessage.error("viewers send JSON text messages only"))
            return
        }
        switch parsed {
        case .ping:
            hub.send(to: viewer, WireMessage.pong(serverTime: Date().millisecondsSince1970))
        case .pong, .clockPong:
            hub.pongReceived(viewer.id)
        case .ack:
            break  // it acknowledged nothing the relay wrote (a real one was taken above)
        case .view(let stream, let width, let height, let visible):
            hub.setView(viewer.id, stream: stream, StreamView(width: width, height: height, visible: visible))
        case .subscribe(let ids):
            hub.subscribe(viewer.id, to: ids.map(Set.init))
            logger.info("viewer subscribed", metadata: ["streams": "\(ids?.joined(separator: ",") ?? "all")"])
        case .setQuality(let quality):
            hub.setQuality(viewer.id, quality)
            logger.info("viewer set quality", metadata: ["quality": "\(quality.rawValue)"])
        case .unknownType(let type):
            hub.send(to: viewer, WireMessage.error("unknown message type \"\(type.prefix(64))\""))
        case .invalid(let rejection):
            hub.send(to: viewer, WireMessage.error(rejection.detail))
        case .frame:
            hub.send(to: viewer, WireMessage.error("viewers cannot send frames"))
        case .refresh(let token):
            guard let lease, let access else {
                hub.send(to: viewer, WireMessage.error("auth is off; there is no token to refresh"))
                return
            }
            do throws(AuthFailure) {
                let fresh = try await lease.refresh(with: token, authority: access.authority)
                hub.narrowScope(viewer.id, to: fresh.scope)
                hub.send(to: viewer, TokenLease.refreshedMessage(fresh))
                logger.info("viewer token refreshed", metadata: ["subject": "\(fresh.subject)", "expires": "\(fresh.expires)"])
            } catch {
                hub.send(to: viewer, WireMessage.error("refresh refused: \(error.reason)"))
                logger.notice("viewer token refresh refused", metadata: ["reason": "\(error.reason)"])
            }
        }
    }
}
