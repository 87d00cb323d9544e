import CTCPInfo
import Foundation
import NIOCore
import Pipeline

/// Writes a viewer's mailbox into its socket on the socket's own event loop.
///
/// Added after the WebSocket upgrade just in front of NIO's
/// `WebSocketFrameEncoder`, on the socket's side of it: what it writes are
/// whole WebSocket messages (`WebSocketWire`), one buffer shared by every
/// viewer of a frame, which go to the socket without passing the encoder or
/// the async channel's handlers. A drain writes while the channel is
/// writable and flushes once; when the channel stops being writable it
/// stops, and NIO's writability change resumes it. No task is woken per frame and no per-viewer await
/// sits between a broadcast and the socket, so a broadcast costs one event
/// loop hop per loop, not one task switch per viewer.
///
/// Frames wait in the mailbox, where a newer one replaces them, not in the
/// kernel: the socket's unsent bytes are capped with `TCP_NOTSENT_LOWAT`
/// and, once the link is measured slow, NIO's own buffer with small water
/// marks, so a slow link shows as an unwritable channel within about one
/// frame instead of seconds of old frames queued under it (`docs/design.md`,
/// "Delivery to a slow viewer"). Its loop's `LinkSampler` has it read the
/// socket's `TCP_INFO` twice a second into the mailbox (`ViewerLink`):
/// goodput, RTT, progress.
///
/// When the viewer sends Close (`ViewerCloseWatcher` says so, on the same
/// loop, before the WebSocket handler answers it), it stops: RFC 6455
/// allows nothing after that answer.
package final class ViewerChannelHandler: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = NIOAny
    package typealias OutboundOut = ByteBuffer

    package let mailbox: ViewerMailbox
    package let metrics: RelayMetrics
    /// Called on the event loop when the mailbox is finished and empty.
    let onDrained: @Sendable () -> Void
    private var context: ChannelHandlerContext?
    /// The channel's writability as its events last said: asking the
    /// channel costs a retain of it per ask (it has a side table), twice a
    /// frame per viewer.
    private var writable = true
    /// The viewer sent Close: nothing more is written.
    private var peerClosed = false
    /// The loop's link sampler, while this handler is in a socket's pipeline.
    private var sampler: LinkSampler?
    /// The send buffer last set from the link's measurements.
    private var sendBuffer: Int?

    /// Unsent bytes TCP may hold for a viewer (`TCP_NOTSENT_LOWAT`): 16 KiB,
    /// about 65 ms of a 2 Mbit/s link, and far less than one full frame, so
    /// the next frame waits in the mailbox, where a newer one replaces it.
    static let unsentLimit = 16 * 1024
    /// NIO's buffer above the socket on a slow link: unwritable once more
    /// than this waits, so one frame at a time leaves the mailbox.
    static let slowLinkWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 8 * 1024, high: 16 * 1024)
    /// On a fast link (a send buffer of at least `fastLinkSendBuffer`) the
    /// kernel takes each frame at once, and marks below a frame's size only
    /// cost two writability events per frame, each walking the pipeline to
    /// the async channel's writer: NIO's defaults (64 KiB) flip for a 60 KB
    /// JPEG and every JSON frame. Above a 720p frame as JSON (≈ 200 KB),
    /// they flip only when the kernel really refuses data.
    static let fastLinkWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 256 * 1024, high: 512 * 1024)
    static let fastLinkSendBuffer = 64 * 1024
    private var fastLink = true
    /// How often the link is read.
    static let samplingInterval = TimeAmount.milliseconds(500)
    /// The last reading said the viewer is reader-paced (as a new viewer is).
    private var readerPaced: Bool
    private let readProbes: Bool
    /// Frames written are still in NIO's buffer, not yet taken by the kernel.
    private var framesAboveKernel = false
    private var draining = false

    /// `readProbes`: the viewer's wire is a WebSocket, which can carry the
    /// read probe that paces a slow reader (an MJPEG response cannot).
    package init(mailbox: ViewerMailbox, metrics: RelayMetrics, readProbes: Bool = true, onDrained: @escaping @Sendable () -> Void) {
        self.mailbox = mailbox
        self.metrics = metrics
        self.readProbes = readProbes
        self.readerPaced = readProbes
        self.onDrained = onDrained
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let channel = context.channel
        writable = channel.isWritable
        // Fast-link marks until a reading shows the link, not the relay, sets the pace.
        channel.setOption(ChannelOptions.writeBufferWaterMark, value: Self.fastLinkWaterMark).whenComplete { _ in }
        // Only a TCP socket has these; a test's embedded channel has neither.
        if channel is SocketOptionProvider {
            let lowat = ChannelOptions.Types.SocketOption(level: .tcp, name: .init(rawValue: CInt(TCP_NOTSENT_LOWAT)))
            channel.setOption(lowat, value: Self.unsentLimit).whenComplete { _ in }
            // Held strongly by the sampler until `handlerRemoved`. (A weak reference
            // would give the handler a side table and make every retain of it,
            // two a frame, take the slow path.)
            // No reading now: the loop's next tick takes the first, so that
            // the first interval, which sets the first goodput outright
            // (`ViewerLink.record`), is a whole one.
            sampler = LinkSampler.on(context.eventLoop, interval: Self.samplingInterval)
            sampler?.add(self)
        }
        drain()
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        sampler?.remove(self)
        sampler = nil
        self.context = nil
    }

    /// Reads TCP_INFO into the mailbox's `ViewerLink`, and sizes the send
    /// buffer to the link (`ViewerLink.sendBufferSize`): TCP_NOTSENT_LOWAT
    /// alone still let one write queue a 64 KB segment beyond it, and the
    /// autotuned buffer held that much again in flight, 0.8 s at 2 Mbit/s.
    /// Event loop only.
    func sampleLink() {
        guard let channel = context?.channel, let provider = channel as? SocketOptionProvider else { return }
        provider.unsafeGetSocketOption(level: .tcp, name: .tcp_info).whenSuccess { (info: framepipe_tcp_info) in
            let link = self.record(info)
            guard self.context != nil, let wanted = link.sendBufferSize else { return }
            // A reader that stopped reading gets one frame at a time too: frames
            // queued above its closed window would be stale by the time it reads.
            let fast = wanted >= Self.fastLinkSendBuffer && !link.receiverLimited
            if fast != self.fastLink {
                self.fastLink = fast
                channel.setOption(ChannelOptions.writeBufferWaterMark, value: fast ? Self.fastLinkWaterMark : Self.slowLinkWaterMark)
                    .whenComplete { _ in }
            }
            // Only a real change: each set disables the kernel's own tuning anew.
            if let current = self.sendBuffer, abs(wanted - current) < current / 4 { return }
            self.sendBuffer = wanted
            channel.setOption(ChannelOptions.socketOption(.so_sndbuf), value: .init(wanted)).whenComplete { _ in }
        }
    }

    /// One reading into the mailbox's `ViewerLink`. Event loop only.
    private func record(_ info: framepipe_tcp_info) -> ViewerLink {
        let link = mailbox.recordLink(ViewerLink.Reading(
            bytesAcked: info.bytes_acked, notSentBytes: Int(info.notsent_bytes), unackedSegments: Int(info.unacked),
            rtt: .microseconds(Int64(info.rtt)), at: .now))
        readerPaced = readProbes && link.readerPaced
        return link
    }

    /// Closes at once, discarding what the kernel still holds for the
    /// viewer (SO_LINGER 0: a reset): a viewer the relay gave up on is sent
    /// nothing stale after the decision. Event loop only. False when the
    /// handler is not in a pipeline (yet), so there was nothing to close.
    @discardableResult
    func abort() -> Bool {
        guard let context else { return false }
        if let provider = context.channel as? SocketOptionProvider {
            provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in }
        }
        context.close(promise: nil)
        return true
    }

    /// The viewer sent Close: nothing pending is written, and nothing later
    /// is taken. Event loop only, before the Close reaches the handler that answers it.
    func viewerSentClose() {
        guard !peerClosed else { return }
        peerClosed = true
        mailbox.discardPending()
        mailbox.finish()
    }

    package func channelWritabilityChanged(context: ChannelHandlerContext) {
        writable = context.channel.isWritable
        if writable { drain() }
        context.fireChannelWritabilityChanged()
    }

    /// Writes what the mailbox holds while the socket takes it; to a paced
    /// reader (`ViewerLink.readerPaced`), frames only once it has read the
    /// last ones. Event loop only.
    func drain() {
        guard let context, !peerClosed else { return }
        mailbox.drainStarted()
        var wrote = false
        let now = Date().millisecondsSince1970
        var frames = 0
        // While NIO still holds frames the kernel refused, or a paced reader
        // has not read the last ones, new frames wait in the mailbox, where
        // a newer frame replaces them: a frame queued in NIO's buffer or the
        // reader's cannot be replaced, and a reader that lags behind a fast
        // link would read a backlog of old frames there.
        let framesHeld = framesAboveKernel || (readerPaced && mailbox.awaitingRead && !mailbox.isFinished)
        while writable, let item = mailbox.poll(nowMilliseconds: now, controlOnly: framesHeld) {
            context.write(wrapOutboundOut(item.bytes), promise: nil)
            if case .frame = item.kind { frames += 1 }
            wrote = true
        }
        if frames > 0, readerPaced {
            context.write(wrapOutboundOut(WebSocketWire.readProbe), promise: nil)
            mailbox.framesWrittenToPacedReader()
        }
        draining = true
        defer { draining = false }
        if wrote { context.flush() }
        if frames > 0 {
            watchFramesAboveKernel(context)
            metrics.framesDelivered(frames)
        }
        // Held frames wait as they would for a full socket: newer ones
        // replace them, and the stall rule watches the link and the reader.
        let blocked = !writable || (framesHeld && mailbox.hasFramesWaiting)
        mailbox.drainStopped(blocked: blocked && !mailbox.isFinishedAndDrained, wrote: wrote)
        if !blocked, mailbox.isFinishedAndDrained { onDrained() }
    }

    /// On a fast link the kernel took the frames inside the flush, and
    /// nothing more is needed. When NIO still holds some, an empty write
    /// behind them completes once they have left (writes complete in
    /// order), so only a refused write costs a promise, not every frame.
    private func watchFramesAboveKernel(_ context: ChannelHandlerContext) {
        guard let pending = try? context.channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes), pending > 0 else { return }
        framesAboveKernel = true
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenComplete { _ in self.framesReachedKernel() }
        context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: promise)
    }

    /// The frames last written left NIO's buffer for the kernel (at once
    /// on a fast link, inside the flush; later when the socket was full).
    private func framesReachedKernel() {
        framesAboveKernel = false
        guard mailbox.hasFramesWaiting || mailbox.isFinished else { return }
        // Inside a drain's flush the drain is still running: drain after it.
        if draining {
            context?.eventLoop.execute { self.drain() }
        } else {
            drain()
        }
    }

    /// The viewer answered a read probe (`ViewerCloseWatcher` saw the Pong
    /// on this loop): it has read the frames before it. Event loop only.
    func viewerReadProbe() {
        mailbox.readConfirmed()
        if mailbox.hasFramesWaiting { drain() }
    }
}

// Safe: every method runs on the channel's event loop (NIO calls the
// handler methods there, and `drain` is only ever scheduled onto that loop);
// other threads only hold the reference to hand it to `eventLoop.execute`.
extension ViewerChannelHandler: @unchecked Sendable {}
