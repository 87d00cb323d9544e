import NIOCore
import NIOWebSocket

/// Writes a viewer's mailbox into its socket on the socket's own event loop.
///
/// Added to the end of the viewer's channel pipeline after the WebSocket
/// upgrade. A drain writes while the channel is writable and flushes once;
/// when the channel stops being writable it stops, and NIO's writability
/// change resumes it. No task is woken per frame and no per-viewer await
/// sits between a broadcast and the socket, so a broadcast costs one event
/// loop hop per loop, not one task switch per viewer.
package final class ViewerChannelHandler: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = NIOAny
    package typealias OutboundOut = WebSocketFrame

    package let mailbox: ViewerMailbox
    package let metrics: RelayMetrics
    /// Called on the event loop when the mailbox is finished and empty.
    package let onDrained: @Sendable () -> Void
    private var context: ChannelHandlerContext?

    package init(mailbox: ViewerMailbox, metrics: RelayMetrics, onDrained: @escaping @Sendable () -> Void) {
        self.mailbox = mailbox
        self.metrics = metrics
        self.onDrained = onDrained
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        drain()
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    package func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { drain() }
        context.fireChannelWritabilityChanged()
    }

    /// Writes what the mailbox holds while the socket takes it. Event loop only.
    package func drain() {
        guard let context else { return }
        mailbox.drainStarted()
        var wrote = false
        while context.channel.isWritable, let item = mailbox.poll() {
            let frame = WebSocketFrame(fin: true, opcode: item.isText ? .text : .binary, data: item.bytes)
            context.write(wrapOutboundOut(frame), promise: nil)
            if case .frame = item.kind { metrics.frameDelivered() }
            wrote = true
        }
        if wrote { context.flush() }
        let blocked = !context.channel.isWritable
        mailbox.drainStopped(blocked: blocked && !mailbox.isFinishedAndDrained, wrote: wrote)
        if !blocked, mailbox.isFinishedAndDrained { onDrained() }
    }
}

// Safe: every method runs on the channel's event loop (NIO calls the
// handler methods there, and `drain` is only ever scheduled onto that loop);
// other threads only hold the reference to hand it to `eventLoop.execute`.
extension ViewerChannelHandler: @unchecked Sendable {}
