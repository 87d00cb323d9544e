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
        if unwrapInboundIn(data).opcode == .connectionClose { writer.viewerSentClose() }
        context.fireChannelRead(data)
    }
}

// Safe: NIO calls it on its channel's event loop only, where the writer lives too.
extension ViewerCloseWatcher: @unchecked Sendable {}
