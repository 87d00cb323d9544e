import Foundation
import NIOCore
@testable import RelayCore
@testable import RelayRules
import NIOEmbedded
import NIOWebSocket
import PropertyBased
import Testing

/// A viewer's outbox: latest wins, credits, frame ages, and what the link
/// readings make of progress. Plain calls, time passed in.
@Suite("Viewer mailbox")
struct ViewerMailboxTests {
    static func offer(_ mailbox: ViewerMailbox, _ stream: String, seq: UInt64, receivedAt: Int64 = 0) -> ViewerMailbox.Offer {
        mailbox.offerFrame(streamID: stream, rendition: .full, bytes: WebSocketWire.text("\(stream)#\(seq)"),
                           receivedAt: receivedAt, seq: seq)
    }

    /// What the writer would take now, as "stream#seq".
    static func takeAll(_ mailbox: ViewerMailbox, now: Int64 = 0) -> [String] {
        var taken: [String] = []
        mailbox.drainStarted()
        while let item = mailbox.poll(nowMilliseconds: now) { taken.append(String(buffer: WebSocketWire.payload(of: item.bytes))) }
        return taken
    }

    @Test func withoutCreditsTheNewestUnsentFrameOfEachStreamGoes() {
        let mailbox = ViewerMailbox()
        for seq in 0..<3 as Range<UInt64> { _ = Self.offer(mailbox, "A", seq: seq) }
        _ = Self.offer(mailbox, "B", seq: 7)
        #expect(Self.takeAll(mailbox) == ["A#2", "B#7"])
        #expect(mailbox.statistics.replaced == 2)
    }

    /// Each row: frames offered (stream A), acks, and what goes out after.
    @Test func withCreditsAtMostTwoFramesOfAStreamAreUnacknowledged() {
        let mailbox = ViewerMailbox(creditLimit: 2)
        _ = Self.offer(mailbox, "A", seq: 0)
        #expect(Self.takeAll(mailbox) == ["A#0"])
        _ = Self.offer(mailbox, "A", seq: 1)
        #expect(Self.takeAll(mailbox) == ["A#1"])
        _ = Self.offer(mailbox, "A", seq: 2)
        _ = Self.offer(mailbox, "B", seq: 0)
        #expect(Self.takeAll(mailbox) == ["B#0"], "A has two unacknowledged frames; B is not held up by them")
        _ = Self.offer(mailbox, "A", seq: 3)  // replaces 2 while it waits
        #expect(Self.takeAll(mailbox).isEmpty, "the drain the offer asked for finds no credit")
        #expect(mailbox.ack(streamID: "A", seq: 0) == .init(acknowledged: true, needsDrain: true), "the freed credit asks for a drain: a frame waits")
        #expect(Self.takeAll(mailbox) == ["A#3"])
        #expect(mailbox.ack(streamID: "A", seq: 0) == .init(), "an old ack frees nothing more")
        #expect(mailbox.ack(streamID: "A", seq: 3) == .init(acknowledged: true), "nothing waits, so no drain is needed")
        _ = Self.offer(mailbox, "A", seq: 4)
        #expect(Self.takeAll(mailbox) == ["A#4"])
    }

    @Test func aStreamsEndClearsItsCreditsAndAFinishedMailboxFlushesWhatWaits() {
        let mailbox = ViewerMailbox(creditLimit: 1)
        _ = Self.offer(mailbox, "A", seq: 0)
        #expect(Self.takeAll(mailbox) == ["A#0"])
        mailbox.enqueueStreamEnded("A", text: "ended")
        _ = Self.offer(mailbox, "A", seq: 1)  // the stream id started again
        #expect(Self.takeAll(mailbox) == ["ended", "A#1"])
        _ = Self.offer(mailbox, "A", seq: 2)
        #expect(Self.takeAll(mailbox).isEmpty)
        mailbox.finish()
        #expect(Self.takeAll(mailbox) == ["A#2"])
        #expect(mailbox.isFinishedAndDrained)
    }

    @Test func eachFramesAgeIsTakenWhenItIsWritten() {
        let mailbox = ViewerMailbox()
        for (seq, age) in [(0, 40), (1, 20), (2, 900)] as [(UInt64, Int64)] {
            _ = Self.offer(mailbox, "A", seq: seq, receivedAt: 10_000)
            _ = Self.takeAll(mailbox, now: 10_000 + age)
        }
        #expect(mailbox.statistics.ages.p95 == 900)
        #expect(mailbox.statistics.bytesWritten == 15, "three messages of a 2-byte WebSocket header and 3 bytes")
    }

    @Test func framesAgesP95IsOverTheLast128() {
        var ages = FrameAges()
        #expect(ages.p95 == nil)
        for age in 1...100 { ages.record(milliseconds: Int64(age)) }
        #expect(ages.p95 == 95)
        for _ in 0..<FrameAges.capacity { ages.record(milliseconds: 7) }
        #expect(ages.p95 == 7, "older ages have left the window")
    }

    /// The p95 is the nearest-rank percentile of the ages in the window,
    /// whatever their order, repeats and count.
    @Test func framesAgesP95IsTheNearestRankOfTheWindow() async {
        let histories = Gen<Int64>.int64(in: -5...3_000).array(of: 1...300)
        await propertyCheck(count: 500, input: histories) { history in
            var ages = FrameAges()
            for age in history { ages.record(milliseconds: age) }
            let window = history.suffix(FrameAges.capacity).map { max(0, $0) }.sorted()
            #expect(ages.p95 == Int(window[(window.count * 95 + 99) / 100 - 1]))
        }
    }

    /// Which held delivery back in a window: readings that found the link
    /// carrying data (segments in flight, or bytes waiting in the kernel)
    /// against those that found the reader's window closed. A window with
    /// neither says nothing.
    @Test func aWindowSaysTheLinkWasBusyOnlyWhenItsReadingsShowedIt() {
        let t0 = ContinuousClock.now
        var link = ViewerLink()
        func read(at seconds: Double, notSent: Int, unacked: Int) {
            link.record(.init(bytesAcked: UInt64(seconds * 1000), notSentBytes: notSent, unackedSegments: unacked, rtt: .milliseconds(1),
                              at: t0 + .seconds(seconds)))
        }
        // Nothing waiting anywhere (a relay that wrote late): neither.
        for tenth in 0..<5 { read(at: Double(tenth) / 10, notSent: 0, unacked: 0) }
        #expect(!link.linkBusyMostly && !link.readerLimitedMostly)
        // Segments in flight, nothing left in the kernel (behind a shaper): the link.
        read(at: 0.5, notSent: 0, unacked: 8)
        #expect(link.linkBusyMostly && !link.readerLimitedMostly)
        // More readings with the reader's window closed: the reader.
        read(at: 0.6, notSent: 20_000, unacked: 0)
        read(at: 0.7, notSent: 20_000, unacked: 0)
        #expect(!link.linkBusyMostly && link.readerLimitedMostly)
        // Data waiting behind segments in flight, twice: the link again.
        read(at: 0.8, notSent: 20_000, unacked: 8)
        read(at: 0.9, notSent: 20_000, unacked: 8)
        read(at: 1.0, notSent: 20_000, unacked: 8)
        #expect(link.linkBusyMostly && !link.readerLimitedMostly)
        // A new window starts from nothing.
        link.openWindow()
        #expect(!link.linkBusyMostly && !link.readerLimitedMostly)
    }

    /// A reader that is alive but slow (its TCP acknowledged everything and
    /// closed its window) is told apart from a link that takes nothing (data
    /// in flight, unacknowledged): the first may go several of its read
    /// intervals without progress, the second only the send timeout.
    @Test func aSlowReaderIsAllowedSeveralReadIntervalsADeadLinkOnlyTheTimeout() {
        let t0 = ContinuousClock.now
        var link = ViewerLink()
        func read(at seconds: Double, acked: UInt64, notSent: Int, unacked: Int) {
            link.record(.init(bytesAcked: acked, notSentBytes: notSent, unackedSegments: unacked, rtt: .milliseconds(1), at: t0 + .seconds(seconds)))
        }
        read(at: 0, acked: 0, notSent: 16_000, unacked: 0)
        #expect(link.receiverLimited, "data waits, nothing in flight: the reader's window is closed")
        #expect(link.stallLimit(sendTimeout: .seconds(1), roundTrips: 10) == .seconds(3), "three send timeouts until its pace is known")
        // It reads once a second: the window opens, the link acknowledges, then closes again.
        var acked: UInt64 = 0
        for second in 1...6 {
            acked += 27_000
            read(at: Double(second), acked: acked, notSent: 16_000, unacked: 2)
            read(at: Double(second) + 0.1, acked: acked, notSent: 16_000, unacked: 0)
        }
        let interval = try! #require(link.readInterval)
        #expect(interval > .milliseconds(800) && interval < .milliseconds(1100), "\(interval)")
        #expect(link.stallLimit(sendTimeout: .seconds(1), roundTrips: 10) == interval * 3)
        #expect(link.readerLimitedMostly)
        #expect(!link.linkBusyMostly)
        // A link that stops taking bytes with data in flight: the plain limit.
        read(at: 7, acked: acked, notSent: 16_000, unacked: 12)
        #expect(!link.receiverLimited)
        #expect(link.stallLimit(sendTimeout: .seconds(1), roundTrips: 10) == .seconds(1))
        // A reader whose reads are minutes apart is still bounded.
        var frozen = ViewerLink()
        frozen.record(.init(bytesAcked: 0, notSentBytes: 16_000, unackedSegments: 0, rtt: .milliseconds(1), at: t0))
        frozen.record(.init(bytesAcked: 1, notSentBytes: 16_000, unackedSegments: 0, rtt: .milliseconds(1), at: t0 + .seconds(600)))
        frozen.record(.init(bytesAcked: 1, notSentBytes: 16_000, unackedSegments: 0, rtt: .milliseconds(1), at: t0 + .seconds(601)))
        #expect(frozen.stallLimit(sendTimeout: .seconds(1), roundTrips: 10) == .seconds(30))
    }

    /// A new viewer is paced until it has kept up for `readerPacedFor` from
    /// its first frames, however long it waited for a stream first; one
    /// that leaves its frames unread with everything delivered lags, stays
    /// paced, and its answers to the read probe are its progress and its
    /// read interval.
    @Test func aReaderIsPacedWhileNewAndWhileItLags() {
        let t0 = ContinuousClock.now
        func at(_ ms: Int) -> ContinuousClock.Instant { t0 + .milliseconds(ms) }
        var keepsUp = ViewerLink()
        #expect(keepsUp.readerPaced, "new")
        // Connected ten seconds before any stream: its link was read, its reader never tested.
        for ms in stride(from: -10_000, to: 0, by: 1_000) {
            keepsUp.record(.init(bytesAcked: 100, notSentBytes: 0, unackedSegments: 0, rtt: .milliseconds(1), at: at(ms)))
        }
        #expect(keepsUp.readerPaced, "no frame written yet")
        for ms in stride(from: 0, through: 5_000, by: 500) {
            #expect(keepsUp.readerPaced, "at \(ms) ms")
            keepsUp.framesWritten(at: at(ms))
            keepsUp.record(.init(bytesAcked: UInt64(ms), notSentBytes: 0, unackedSegments: 0, rtt: .milliseconds(1), at: at(ms)))
            keepsUp.readConfirmed(at: at(ms + 1))
        }
        #expect(!keepsUp.readerPaced, "it kept up for five seconds")
        #expect(!keepsUp.receiverLimited)

        var lags = ViewerLink()
        lags.record(.init(bytesAcked: 0, notSentBytes: 0, unackedSegments: 0, rtt: .milliseconds(1), at: at(0)))
        var acked: UInt64 = 0
        for second in 0..<8 {
            let written = second * 1_000
            lags.framesWritten(at: at(written))
            acked += 27_000
            #expect(lags.awaitingReadSince == at(written))
            // Delivered at once; unread for the 150 ms the rule asks, and on.
            lags.record(.init(bytesAcked: acked, notSentBytes: 0, unackedSegments: 0, rtt: .milliseconds(1), at: at(written + 100)))
            lags.record(.init(bytesAcked: acked, notSentBytes: 0, unackedSegments: 0, rtt: .milliseconds(1), at: at(written + 300)))
            #expect(lags.receiverLimited, "frames delivered, not read: the reader lags")
            #expect(lags.lastProgress == at(written + 100), "no progress since the acknowledgement")
            lags.readConfirmed(at: at(written + 950))
            #expect(lags.lastProgress == at(written + 950), "its read is progress")
            #expect(lags.awaitingReadSince == nil)
        }
        #expect(lags.readerPaced, "seconds old, and still paced")
        let interval = try! #require(lags.readInterval)
        #expect(interval == .milliseconds(650), "from the first lagging reading to the read")
    }

    /// Each row: seconds since start, bytes acknowledged so far, unsent and
    /// unacknowledged data, and the stall the link shows after it.
    @Test func aLinkThatKeepsAcknowledgingIsNotStalledHoweverSlow() {
        let t0 = ContinuousClock.now
        var link = ViewerLink()
        let rows: [(at: Double, acked: UInt64, notSent: Int, unacked: Int, stalledFor: Double)] = [
            (0, 0, 16_000, 10, 0),
            (0.5, 31_250, 16_000, 10, 0),    // 0.5 Mbit/s: slow, but taking bytes
            (1.0, 62_500, 16_000, 10, 0),
            (1.5, 62_500, 16_000, 10, 0.5),  // nothing acknowledged for half a second
            (3.0, 62_500, 16_000, 10, 2.0),
            (3.5, 62_500, 0, 0, 0),          // idle: nothing to send is not a stall
        ]
        var goodputs: [Double] = []
        for row in rows {
            let at = t0 + .seconds(row.at)
            link.record(.init(bytesAcked: row.acked, notSentBytes: row.notSent, unackedSegments: row.unacked, rtt: .milliseconds(80), at: at))
            #expect(link.lastProgress.map { at - $0 } == .seconds(row.stalledFor), "at \(row.at) s")
            goodputs.append(link.goodput)
        }
        // The first interval as measured (no ramp from zero), then a ~2 s average that falls while the link takes nothing.
        #expect(goodputs[1] == 62_500 && goodputs[2] == 62_500, "\(goodputs)")
        #expect(goodputs[3] < goodputs[2], "\(goodputs)")
        #expect(goodputs[4] < goodputs[2], "\(goodputs)")
        #expect(link.rtt == .milliseconds(80))
    }

    /// One round trip of what the link carries, within bounds: a slow link
    /// is not given seconds of buffer, a fast long one is not starved.
    @Test(arguments: [
        (250_000.0, 100, 25_000),        // 2 Mbit/s, 100 ms
        (62_500.0, 200, 12_500),         // 0.5 Mbit/s, 200 ms
        (1_000_000.0, 0, 100_000),       // loopback: at least 100 ms of it
        (1_000.0, 50, 8 * 1024),         // never under the minimum
        (500_000_000.0, 100, 4 << 20),   // never over the maximum
    ])
    func theSendBufferFollowsTheLinksBandwidthDelayProduct(goodput: Double, rttMs: Int, expected: Int) {
        let t0 = ContinuousClock.now
        var link = ViewerLink()
        link.record(.init(bytesAcked: 0, notSentBytes: 1, unackedSegments: 1, rtt: .milliseconds(rttMs), at: t0))
        // Long enough at a steady rate for the average to settle.
        for step in 1...40 {
            link.record(.init(bytesAcked: UInt64(goodput * Double(step) * 0.25), notSentBytes: 1, unackedSegments: 1,
                              rtt: .milliseconds(rttMs), at: t0 + .milliseconds(250 * step)))
        }
        guard let size = link.sendBufferSize else { Issue.record("no send buffer size after measuring"); return }
        #expect(abs(size - expected) <= expected / 50, "\(size) for \(goodput) B/s at \(rttMs) ms")
        // Nothing waiting in the kernel: the relay set the pace, not the link, so the buffer is left alone.
        link.record(.init(bytesAcked: UInt64(goodput * 10.25), notSentBytes: 0, unackedSegments: 1, rtt: .milliseconds(rttMs),
                          at: t0 + .milliseconds(250 * 41)))
        #expect(link.sendBufferSize == nil)
    }
}

extension ViewerMailboxTests {
    /// Capped at 10 fps, a 30 fps stream's frames are offered every third
    /// one; the others are never queued, so what is written is always fresh.
    @Test func aFrameRateCapOffersOnlyTheFramesThatAreDue() {
        let mailbox = ViewerMailbox()
        let start = ContinuousClock.now
        var written: [UInt64] = []
        for seq in 0..<12 {
            _ = mailbox.offerFrame(streamID: "P-1", rendition: .low, bytes: ByteBuffer(string: "f\(seq)"), receivedAt: 0,
                                   seq: UInt64(seq), pacing: (.milliseconds(100), start + .milliseconds(33 * seq)))
            while let item = mailbox.poll() { written.append(item.seq!) }
        }
        #expect(written == [0, 3, 6, 9])
        // A due frame still waiting (the socket is full) is replaced by a newer one, due or not.
        _ = mailbox.offerFrame(streamID: "P-1", rendition: .low, bytes: ByteBuffer(string: "a"), receivedAt: 0, seq: 20,
                               pacing: (.milliseconds(100), start + .seconds(2)))
        _ = mailbox.offerFrame(streamID: "P-1", rendition: .low, bytes: ByteBuffer(string: "b"), receivedAt: 0, seq: 21,
                               pacing: (.milliseconds(100), start + .seconds(2) + .milliseconds(33)))
        #expect(mailbox.poll()?.seq == 21)
        // The cap still holds after that replacement: the next frame 33 ms on is not due
        // (the slow link is exactly when the cap matters).
        _ = mailbox.offerFrame(streamID: "P-1", rendition: .low, bytes: ByteBuffer(string: "c"), receivedAt: 0, seq: 22,
                               pacing: (.milliseconds(100), start + .seconds(2) + .milliseconds(66)))
        #expect(mailbox.poll() == nil, "a capped frame that replaced a waiting one does not lift the cap")
        _ = mailbox.offerFrame(streamID: "P-1", rendition: .low, bytes: ByteBuffer(string: "d"), receivedAt: 0, seq: 23,
                               pacing: (.milliseconds(100), start + .seconds(2) + .milliseconds(100)))
        #expect(mailbox.poll()?.seq == 23)
        _ = mailbox.offerFrame(streamID: "P-1", rendition: .low, bytes: ByteBuffer(string: "x"), receivedAt: 0, seq: 12)
        #expect(mailbox.poll()?.seq == 12, "without a cap, every frame is offered again")
    }
}

/// The writer on a viewer's channel, in NIO's embedded channel.
@Suite("Viewer channel handler")
struct ViewerChannelHandlerTests {
    /// RFC 6455: after the viewer's Close is answered, nothing more is sent.
    @Test func nothingIsWrittenAfterTheViewerSentClose() throws {
        let mailbox = ViewerMailbox()
        let handler = ViewerChannelHandler(mailbox: mailbox, metrics: RelayMetrics()) {}
        let channel = EmbeddedChannel(handlers: [handler, ViewerCloseWatcher(writer: handler)])
        _ = mailbox.offerFrame(streamID: "P-1", rendition: .full, bytes: ByteBuffer(string: "frame 1"), receivedAt: 0, seq: 1)
        handler.drain()
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "frame 1"))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == WebSocketWire.readProbe, "a new viewer is paced")
        // The viewer's Close comes up from the decoder; a frame is published right after.
        try channel.writeInbound(WebSocketFrame(fin: true, opcode: .connectionClose, data: ByteBuffer(bytes: [0x03, 0xE8])))
        _ = mailbox.offerFrame(streamID: "P-1", rendition: .full, bytes: ByteBuffer(string: "frame 2"), receivedAt: 0, seq: 2)
        _ = mailbox.enqueueControl(#"{"type":"ping"}"#)
        handler.drain()
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "nothing after Close")
        // The Close still goes up to the WebSocket handler, which answers it.
        #expect(try channel.readInbound(as: WebSocketFrame.self)?.opcode == .connectionClose)
        _ = try channel.finish()
    }

    /// A reader that has not read the frames last written to it (its Pong
    /// to the read probe after them has not come) is written no more; the
    /// frames offered meanwhile replace one another, and when it answers it
    /// gets the newest. The probe's Pong stops at the watcher; the
    /// keep-alive's goes on to the WebSocket handler.
    @Test func aPacedReaderGetsTheNewestFrameOnceItHasReadTheLast() throws {
        let mailbox = ViewerMailbox()
        let handler = ViewerChannelHandler(mailbox: mailbox, metrics: RelayMetrics()) {}
        let channel = EmbeddedChannel(handlers: [handler, ViewerCloseWatcher(writer: handler)])
        func offer(_ seq: UInt64) {
            if mailbox.offerFrame(streamID: "P-1", rendition: .full, bytes: ByteBuffer(string: "frame \(seq)"), receivedAt: 0, seq: seq).needsDrain {
                handler.drain()
            }
        }
        offer(1)
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "frame 1"))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == WebSocketWire.readProbe)
        for seq in 2...5 { offer(UInt64(seq)) }
        _ = mailbox.enqueueControl(#"{"type":"ping"}"#)
        handler.drain()
        #expect(try channel.readOutbound(as: ByteBuffer.self) == WebSocketWire.text(#"{"type":"ping"}"#), "control messages are not held")
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil, "no frame before the reader has read frame 1")
        try channel.writeInbound(WebSocketFrame(fin: true, opcode: .pong, data: ByteBuffer(bytes: WebSocketWire.readProbePayload)))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "frame 5"), "the newest, not the next")
        #expect(try channel.readOutbound(as: ByteBuffer.self) == WebSocketWire.readProbe)
        #expect(try channel.readInbound(as: WebSocketFrame.self) == nil, "the probe's Pong is the writer's")
        try channel.writeInbound(WebSocketFrame(fin: true, opcode: .pong, data: ByteBuffer(string: "keep-alive")))
        #expect(try channel.readInbound(as: WebSocketFrame.self)?.opcode == .pong)
        _ = try channel.finish()
    }
}
