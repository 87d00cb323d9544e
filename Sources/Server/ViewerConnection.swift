import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import Pipeline

/// Serves one viewer's WebSocket: a writer that drains the viewer's
/// mailbox into the socket, one write at a time, and a reader for the
/// viewer's own messages (ping, pong, subscribe, set_quality).
///
/// The writer is the only code that waits on this viewer's socket; a
/// broadcast only touches the mailbox. Housekeeping watches how long a write
/// has been pending and cuts the viewer off after `viewerSendTimeout`.
struct ViewerConnection: Sendable {
    let hub: ViewerHub
    let metrics: RelayMetrics
    let format: ViewerFormat
    let streams: Set<String>?
    let quality: QualityPreference
    var logger: Logger

    func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, context: RelayRequestContext) async {
        let channel = context.channel
        guard let viewer = hub.addViewer(format: format, streams: streams, quality: quality, remoteAddress: context.remoteAddress,
                                         close: { channel.close(promise: nil) })
        else {
            try? await outbound.close(.goingAway, reason: StreamEndReason.shutdown.rawValue)
            return
        }
        let logger = logger.with(metadataKey: "viewer_id", value: "\(viewer.id)")
        let mailbox = viewer.mailbox

        let reason: String = await withTaskGroup(of: String.self) { group in
            group.addTask {
                while let item = await mailbox.next() {
                    mailbox.writeStarted()
                    do {
                        try await outbound.write(.custom(WebSocketFrame(fin: true, opcode: item.isText ? .text : .binary, data: item.bytes)))
                    } catch {
                        return "write_failed"
                    }
                    mailbox.writeFinished(item)
                    if case .frame = item.kind { metrics.frameDelivered() }
                }
                return "shutdown"
            }
            group.addTask {
                do {
                    for try await message in inbound.messages(maxSize: 64 * 1024) {
                        handle(message, viewer: viewer, logger: logger)
                    }
                } catch {
                    return "read_failed"
                }
                return "closed"
            }
            let first = await group.next() ?? "closed"
            group.cancelAll()
            return first
        }
        hub.removeViewer(viewer.id, reason: reason)
    }

    private func handle(_ message: WebSocketMessage, viewer: ViewerHub.Viewer, logger: Logger) {
        guard case .text(let text) = message else {
            viewer.mailbox.enqueueControl(WireMessage.error("viewers send JSON text messages only"))
            return
        }
        switch InboundMessage.viewer(text: text) {
        case .ping:
            viewer.mailbox.enqueueControl(WireMessage.pong)
        case .pong:
            hub.pongReceived(viewer.id)
        case .subscribe(let ids):
            hub.subscribe(viewer.id, to: ids.map(Set.init))
            logger.info("viewer subscribed", metadata: ["streams": "\(ids?.joined(separator: ",") ?? "all")"])
        case .setQuality(let quality):
            hub.setQuality(viewer.id, quality)
            logger.info("viewer set quality", metadata: ["quality": "\(quality.rawValue)"])
        case .unknownType(let type):
            viewer.mailbox.enqueueControl(WireMessage.error("unknown message type \"\(type.prefix(64))\""))
        case .invalid(let rejection):
            viewer.mailbox.enqueueControl(WireMessage.error(rejection.detail))
        case .frame:
            viewer.mailbox.enqueueControl(WireMessage.error("viewers cannot send frames"))
        }
    }
}
