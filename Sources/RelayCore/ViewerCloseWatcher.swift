import NIOCore
import NIOWebSocket

/// Sits just after NIO's WebSocket frame decoder on a viewer's channel and
/// tells the viewer's writer the moment a Close frame comes up, before the
/// WebSocket handler above answers it: the writer sits on the socket's side
/// of the encoder, below that answer, and would otherwise go on writing
/// frames after it, which RFC 6455 forbids.
package final class ViewerCloseWatcher: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = WebSocketFrame

    private let writer: ViewerChannelHandler

    package init(writer: ViewerChannelHandler) {
        self.writer = writer
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .connectionClose:
            writer.viewerSentClose()
        case .pong where frame.fin && frame.unmaskedData.readableBytesView.elementsEqual(WebSocketWire.readProbePayload):
            // The answer to the writer's read probe, not to the keep-alive: it stops here.
            writer.viewerReadProbe()
            return
        default:
            break
        }
        context.fireChannelRead(data)
    }
}

// Safe: NIO calls it on its channel's event loop only, where the writer lives too.
extension ViewerCloseWatcher: @unchecked Sendable {}
