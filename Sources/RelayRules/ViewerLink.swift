/// What TCP says about one viewer's link, sampled a few times a second on
/// the viewer's event loop (`TCP_INFO`): how fast the link really takes
/// data, its round trip, and when it last made progress. The relay judges a
/// viewer by this, not by whether one write finished within a second: a
/// slow link that keeps taking bytes is slow, not dead.
package struct ViewerLink: Sendable, Equatable {
    /// One reading of the socket.
    package struct Reading: Sendable, Equatable {
        var bytesAcked: UInt64
        /// Written by the relay, not yet sent by TCP (bounded by `TCP_NOTSENT_LOWAT`).
        package var notSentBytes: Int
        /// Sent, not yet acknowledged.
        var unackedSegments: Int
        package var rtt: Duration
        var at: ContinuousClock.Instant

        package init(bytesAcked: UInt64, notSentBytes: Int, unackedSegments: Int, rtt: Duration, at: ContinuousClock.Instant) {
            self.bytesAcked = bytesAcked
            self.notSentBytes = notSentBytes
            self.unackedSegments = unackedSegments
            self.rtt = rtt
            self.at = at
        }
    }

    package private(set) var last: Reading?
    /// Bytes per second the link acknowledged, smoothed over about two seconds.
    package private(set) var goodput: Double = 0
    /// When the link last acknowledged new bytes, or had nothing to send.
    package private(set) var lastProgress: ContinuousClock.Instant?
    /// The last reading found data waiting in the kernel: the link, not the
    /// relay, set the pace, so `goodput` is the link's capacity. Otherwise
    /// it is only what the relay happened to send (a viewer on the `low`
    /// rendition sends less), which says nothing about the link.
    package private(set) var linkLimited = false
    /// The last reading found data waiting and nothing in flight: the
    /// viewer's TCP acknowledged everything sent and closed its window. Its
    /// link is fine; its reader is not reading (a slow device, or a tab
    /// that froze). Told apart from a slow link (data in flight, waiting
    /// for the link), which the delivery policy steps down.
    package private(set) var receiverLimited = false
    /// A new viewer starts paced, and leaves once it has kept up for
    /// `readerPacedFor` from its first frames (a viewer that waited for a
    /// stream has shown nothing of its reader yet): while paced, each write of frames is followed by a
    /// read probe (a WebSocket Ping, which a client answers only once it
    /// has read past the frames), and no frame is written while one is
    /// unanswered, so what a lagging reader reads next is the newest frame,
    /// not one that waited in its socket buffer behind others. A device that
    /// reads slowly from its first second would otherwise be sent a buffer's
    /// worth of frames, seconds of reading, before a reading showed it.
    package var readerPaced: Bool {
        guard let now = last?.at else { return true }
        guard let since = lastReaderLimitedAt ?? firstFramesWrittenAt else { return true }
        return now - since < Self.readerPacedFor
    }
    static let readerPacedFor: Duration = .seconds(5)
    /// Frames were written to a paced reader and its read probe is not
    /// answered yet: it has not read them.
    package private(set) var awaitingReadSince: ContinuousClock.Instant?
    /// A paced reader that leaves frames unread this long while TCP has
    /// delivered everything lags: its reader, not its link, sets the pace.
    static let readerLagShownAfter: Duration = .milliseconds(150)
    private var laggingSince: ContinuousClock.Instant?
    private var lastReaderLimitedAt: ContinuousClock.Instant?
    /// Readings since the window opened, by what limited delivery: the reader or the link.
    private(set) var readerLimitedReadings = 0
    private(set) var linkLimitedReadings = 0
    /// Readings since the window opened that found the link carrying data (in flight or waiting in the kernel).
    private(set) var linkBusyReadings = 0
    /// How long a slow reader typically goes between reads (from the gaps
    /// in its progress while its window was closed); nil until seen.
    private(set) var readInterval: Duration?
    /// When the reader's window last closed with data waiting.
    private var readerStalledSince: ContinuousClock.Instant?
    private var firstSampleAt: ContinuousClock.Instant?
    private var firstFramesWrittenAt: ContinuousClock.Instant?

    package init() {}

    package var rtt: Duration? { last?.rtt }
    package var notSentBytes: Int { last?.notSentBytes ?? 0 }

    package mutating func record(_ sample: Reading) {
        defer { last = sample }
        let delivered = sample.notSentBytes == 0 && sample.unackedSegments == 0
        if awaitingReadSince != nil, delivered {
            laggingSince = laggingSince ?? sample.at
        } else {
            laggingSince = nil
        }
        let lagShown = laggingSince.map { sample.at - $0 >= Self.readerLagShownAfter } ?? false
        linkLimited = sample.notSentBytes > 0
        receiverLimited = sample.unackedSegments == 0 && (sample.notSentBytes > 0 || lagShown)
        if receiverLimited {
            lastReaderLimitedAt = sample.at
        }
        // Frames the link has delivered and the reader has not read: the
        // reader holds delivery back, however briefly.
        if receiverLimited || (awaitingReadSince != nil && delivered) {
            readerLimitedReadings += 1
        } else {
            if linkLimited { linkLimitedReadings += 1 }
            // Data in flight, or waiting in the kernel: the link is carrying what the
            // relay wrote. Behind a shaper the kernel's unsent bytes stay near zero
            // (the send buffer is one round trip) while segments queue in flight.
            if linkLimited || sample.unackedSegments > 0 { linkBusyReadings += 1 }
        }
        // Nothing waits anywhere, the reader's unread frames included.
        let idle = delivered && awaitingReadSince == nil
        guard let previous = last else {
            firstSampleAt = sample.at
            lastProgress = sample.at
            learnReadInterval(from: sample, acked: 0)
            return
        }
        let acked = sample.bytesAcked &- previous.bytesAcked
        if acked > 0 || idle { lastProgress = sample.at }
        learnReadInterval(from: sample, acked: acked)
        let seconds = (sample.at - previous.at).seconds
        guard seconds > 0 else { return }
        // An exponential average with a ~2 s time constant: steady enough to
        // pick a rendition by, quick enough to follow a link that changes.
        // The first interval is taken as it is: ramping up from zero would
        // read a 2 Mbit/s link as a quarter of that for its first second.
        let weight = previous.at == firstSampleAt ? 1 : min(1, seconds / 2)
        goodput += (Double(acked) / seconds - goodput) * weight
    }

    /// The socket send buffer this link needs: one round trip of what it
    /// carries, and at least 100 ms of it (the kernel doubles what is set),
    /// so TCP never idles for want of data and a reader's hiccup is
    /// absorbed, but a slow link does not hold seconds of frames in flight:
    /// what waits below the mailbox is bounded in time, whatever the rate.
    /// Nil while the link is not what limits delivery: sizing the buffer on
    /// what the relay chose to send would shrink a fast viewer's buffer
    /// (and keep a viewer on `low` there).
    package var sendBufferSize: Int? {
        guard linkLimited, let rtt, last != nil, goodput > 0 else { return nil }
        let bdp = goodput * max(rtt.seconds, Self.minimumBufferedTime)
        return min(Self.maximumSendBuffer, max(Self.minimumSendBuffer, Int(bdp)))
    }

    static let minimumBufferedTime = 0.1
    static let minimumSendBuffer = 8 * 1024
    static let maximumSendBuffer = 4 * 1024 * 1024

    /// Frames were written to a paced reader, followed by a read probe.
    package mutating func framesWritten(at now: ContinuousClock.Instant) {
        if awaitingReadSince == nil { awaitingReadSince = now }
        if firstFramesWrittenAt == nil { firstFramesWrittenAt = now }
    }

    /// The paced reader answered its read probe: it read the frames before
    /// it. That is progress, as an acknowledgement is, and ends a gap
    /// between its reads.
    package mutating func readConfirmed(at now: ContinuousClock.Instant) {
        awaitingReadSince = nil
        laggingSince = nil
        lastProgress = now
        endReadGap(at: now)
    }

    /// A gap ends when the reader reads again (its window reopens and the
    /// link acknowledges more); gaps shorter than two readings apart are
    /// the link's own rhythm, not the reader's.
    private mutating func learnReadInterval(from sample: ViewerLink.Reading, acked: UInt64) {
        if acked > 0 { endReadGap(at: sample.at) }
        // Read and closed again between two readings: a new gap starts now.
        if receiverLimited, readerStalledSince == nil { readerStalledSince = sample.at }
    }

    private mutating func endReadGap(at now: ContinuousClock.Instant) {
        guard let since = readerStalledSince else { return }
        readerStalledSince = nil
        let gap = now - since
        if gap >= Self.shortestReadGap { readInterval = readInterval.map { $0 + (gap - $0) * 0.3 } ?? gap }
    }

    static let shortestReadGap: Duration = .milliseconds(200)

    /// Starts a new window of readings (the policy's review reads them).
    package mutating func openWindow() {
        readerLimitedReadings = 0
        linkLimitedReadings = 0
        linkBusyReadings = 0
    }

    /// In the readings since the window opened, the reader held delivery
    /// back more often than the link did: a slow device, not a slow link.
    package var readerLimitedMostly: Bool { readerLimitedReadings > linkLimitedReadings }

    /// In the readings since the window opened, the link was carrying data
    /// (segments in flight, or bytes waiting in the kernel) more often than
    /// the reader held delivery back, and at least once. Frames lost in a
    /// window without this were not lost to the link: to the reader, or to a
    /// relay too busy to write them (a loaded machine, with nothing in
    /// flight), which a smaller picture would not mend.
    package var linkBusyMostly: Bool { linkBusyReadings > readerLimitedReadings }

    /// How long a viewer's link may make no progress while frames wait
    /// before the relay gives up on it: `sendTimeout`, or `roundTrips`
    /// round trips of a long link; for a reader that is alive but slow
    /// (its TCP acknowledged everything, its window is closed), several of
    /// its read intervals (`readIntervals` of them, one `sendTimeout` until
    /// one is known), up to `maximum`: a slow device is kept and sent its
    /// newest frame at each read, while a tab that froze still goes.
    package func stallLimit(sendTimeout: Duration, roundTrips: Int, readIntervals: Int = 3, maximum: Duration = .seconds(30)) -> Duration {
        let link = max(sendTimeout, (rtt ?? .zero) * roundTrips)
        guard receiverLimited else { return link }
        return max(link, min(maximum, (readInterval ?? sendTimeout) * readIntervals))
    }
}

/// The age of the last frames written to a viewer (now minus the frame's
/// `received_at`), for its p95: a bounded ring, so a viewer costs the same
/// memory however long it stays.
package struct FrameAges: Sendable, Equatable {
    private var ages: [Int32] = []
    private var next = 0
    static let capacity = 128

    package init() {}

    package mutating func record(milliseconds: Int64) {
        let value = Int32(clamping: max(0, milliseconds))
        if ages.count < Self.capacity {
            ages.append(value)
        } else {
            ages[next] = value
        }
        next = (next + 1) % Self.capacity
    }

    /// The 95th percentile of the recorded ages, in ms; nil before the first frame.
    /// Over 128 ages that is the 7th largest: one pass keeping the largest
    /// few, with nothing allocated. Sorting a copy instead cost about 1.6 µs
    /// a viewer, and `/api/viewers` and the housekeeping's sample ask every
    /// viewer for it.
    package var p95: Int? {
        guard !ages.isEmpty else { return nil }
        let rank = min(ages.count - 1, (ages.count * 95 + 99) / 100 - 1)
        let kept = ages.count - rank
        return withUnsafeTemporaryAllocation(of: Int32.self, capacity: kept) { largest in
            // `largest[0..<filled]` ascending: the largest ages seen so far.
            var filled = 0
            for age in ages {
                if filled == kept {
                    guard age > largest[0] else { continue }
                    var slot = 0
                    while slot + 1 < kept, largest[slot + 1] < age {
                        largest[slot] = largest[slot + 1]
                        slot += 1
                    }
                    largest[slot] = age
                } else {
                    var slot = filled
                    while slot > 0, largest[slot - 1] > age {
                        largest[slot] = largest[slot - 1]
                        slot -= 1
                    }
                    largest[slot] = age
                    filled += 1
                }
            }
            return Int(largest[0])
        }
    }
}
