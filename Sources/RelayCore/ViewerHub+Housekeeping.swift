import Foundation
import NIOCore
import Pipeline
import WireProtocol

/// What housekeeping and the API ask of the hub, one short critical section
/// each, answered with values: no caller's code runs under the lock.
extension ViewerHub {
    package typealias IdleStream = RelayState.IdleStream
    package typealias StreamSnapshot = RelayState.StreamSnapshot

    package func idleStreams(now: ContinuousClock.Instant, warnAfter: Duration, closeAfter: Duration) -> [IdleStream] {
        transition { $0.idleStreams(now: now, warnAfter: warnAfter, closeAfter: closeAfter) }
    }

    /// A viewer whose link made no progress for longer than it may.
    package struct StalledViewer {
        package let id: String
        package let stalled: Duration
        package let limit: Duration
        /// Its TCP acknowledged everything and closed its window: the reader stopped reading, not the link.
        package let readerStopped: Bool
    }

    /// How many round trips without progress a link is allowed beyond `--viewer-send-timeout`.
    static let stallRoundTrips = 10

    /// Viewers whose link has made no progress while frames waited for
    /// longer than `ViewerLink.stallLimit` allows: max(`sendTimeout`,
    /// `stallRoundTrips` × its RTT), or for a reader that is alive but slow,
    /// several of its read intervals. Only those are dead. A slow link that
    /// keeps taking bytes is never here.
    package func viewersStalled(sendTimeout: Duration, now: ContinuousClock.Instant) -> [StalledViewer] {
        let connections = locked.withLockedValue { Array($0.connections.values) }
        return connections.compactMap { viewer in
            guard let (stalled, link) = viewer.mailbox.stalledFor(now: now) else { return nil }
            let limit = link.stallLimit(sendTimeout: sendTimeout, roundTrips: Self.stallRoundTrips)
            return stalled >= limit ? StalledViewer(id: viewer.id, stalled: stalled, limit: limit, readerStopped: link.receiverLimited) : nil
        }
    }

    package func viewersWithUnansweredPing(olderThan limit: Duration, now: ContinuousClock.Instant) -> [String] {
        read { $0.viewersWithUnansweredPing(olderThan: limit, now: now) }
    }

    /// One sampling period's figures: the state's, and each viewer's loss.
    package struct PeriodReport {
        package var streams: [(id: String, fps: Double, viewers: Int, ingestDelayP95: Int64?)]
        package var viewers: [(id: String, figures: RelayMetrics.ViewerFigures)]
        package var slowChanges: [(id: String, slow: Bool)]
        package var renditionChanges: [RelayState.RenditionChange]
    }

    /// Closes a sampling period of `elapsed`: fps per stream, and each
    /// viewer's measuring window handed to its slow verdict.
    package func sample(elapsed: Duration, slowLossRatio: Double, now: ContinuousClock.Instant = .now) -> PeriodReport {
        let read = readMailboxes(closingWindows: true)
        // A viewer that leaves meanwhile is judged on what it had; its
        // figures, taken at `now`, make no series after it left
        // (`RelayMetrics`'s `takenAt`).
        let losses = read.map { id, stats in
            (id: id, figures: RelayMetrics.ViewerFigures(lossPercent: stats.lossPercent, goodput: stats.link.last == nil ? nil : stats.link.goodput,
                                                         rtt: stats.link.rtt, ageP95: stats.ages.p95))
        }
        let (windows, links) = Self.rulesInput(read)
        return locked.withLockedValue { locked in
            let sample = locked.relay.sample(elapsed: elapsed, windows: windows, slowLossRatio: slowLossRatio, links: links, now: now)
            return PeriodReport(streams: sample.streams, viewers: losses, slowChanges: sample.slowChanges, renditionChanges: sample.renditionChanges)
        }
    }

    /// Half-way through a sampling period: every viewer's policy judges the
    /// window so far (see `RelayState.reviewDelivery`).
    package func reviewDelivery(now: ContinuousClock.Instant = .now) -> [RelayState.RenditionChange] {
        let (windows, links) = Self.rulesInput(readMailboxes(closingWindows: false))
        return locked.withLockedValue { $0.relay.reviewDelivery(windows: windows, links: links, now: now) }
    }

    /// Every viewer's mailbox statistics, with its measuring window closed
    /// (for a sample) or left open (for a review), each mailbox read once,
    /// after the hub's lock, as the API reads them: only the rules' part of
    /// a sample or review holds the lock every frame's fan-out and every
    /// API call wait on.
    private func readMailboxes(closingWindows: Bool) -> [(id: String, stats: ViewerMailbox.Statistics)] {
        let connections = locked.withLockedValue { $0.connections }
        return connections.map { id, viewer in (id, viewer.mailbox.statistics(closingWindow: closingWindows)) }
    }

    /// What the rules judge of each viewer: its window, and its link's figures over that window.
    private static func rulesInput(_ read: [(id: String, stats: ViewerMailbox.Statistics)])
        -> (windows: [String: LossWindow], links: [String: LinkFigures]) {
        var windows: [String: LossWindow] = [:]
        var links: [String: LinkFigures] = [:]
        windows.reserveCapacity(read.count)
        links.reserveCapacity(read.count)
        for (id, stats) in read {
            windows[id] = LossWindow(offered: stats.windowOffered, replaced: stats.windowReplaced)
            links[id] = figures(stats.link)
        }
        return (windows, links)
    }

    private static func figures(_ link: ViewerLink) -> LinkFigures {
        LinkFigures(goodput: link.last == nil ? nil : link.goodput, linkLimited: link.linkBusyMostly, rtt: link.rtt, unsentBytes: link.notSentBytes,
                    readerLimited: link.readerLimitedMostly)
    }

    /// Tells each streamer what its viewers now need, if that changed
    /// (after a review or sample changed renditions or frame-rate caps).
    package func tellDemand(now: ContinuousClock.Instant = .now) {
        transition { $0.expireDemandElsewhere(now: now) + $0.demandUpdates() }
    }

    package func progress() -> [(id: String, frames: Int, fps: Double, viewers: Int, dropsSinceLast: Int)] {
        locked.withLockedValue { $0.relay.progress() }
    }

    package func admissionCounts(streamID: String?, tokenID: String?) -> (streams: Int, streamIsLive: Bool, viewers: Int, tokenViewers: Int) {
        read { $0.admissionCounts(streamID: streamID, tokenID: tokenID) }
    }

    /// This node's streamers and viewers (other nodes' streams not counted).
    package var connectionCounts: (streams: Int, viewers: Int) { read(\.connectionCounts) }

    /// The stream's latest accepted frame. `owner` names the node serving
    /// it when that is another one: its frames reach this node only while a
    /// viewer here watches it.
    package func latestJPEG(of streamID: String) -> (known: Bool, owner: String?, jpeg: ByteBuffer?) {
        let latest = latestFrame(of: streamID)
        guard var frame = latest.frame else { return (latest.known, latest.owner, nil) }
        return (true, latest.owner, frame.resolveJPEG())
    }

    /// The stream's latest accepted frame itself, with the renditions made of it.
    package func latestFrame(of streamID: String) -> (known: Bool, owner: String?, frame: Frame?) {
        read { s in
            guard let stream = s.streams[streamID] else { return (false, nil, nil) }
            return (true, stream.owner, stream.latestFrame)
        }
    }

    /// Started streams the scope allows, by id.
    package func streamSnapshots(scope: StreamScope) -> [StreamSnapshot] { read { $0.streamSnapshots(scope: scope) } }

    /// A viewer as `/api/viewers` shows it: what the rules know, and what its mailbox counted.
    package struct ViewerSnapshot {
        package let listing: ViewerListing
        package let statistics: ViewerMailbox.Statistics
    }

    /// Every viewer, in the order they connected. What the rules know is
    /// read under the hub's lock; each mailbox's figures (its link, its
    /// frames' ages) after it, so a call listing a thousand viewers holds
    /// up no frame for their sake.
    package func viewerSnapshots() -> [ViewerSnapshot] {
        let listed = locked.withLockedValue { locked in
            locked.relay.viewerListings().compactMap { listing in locked.connections[listing.id].map { (listing, $0.mailbox) } }
        }
        return listed.map { ViewerSnapshot(listing: $0, statistics: $1.statistics) }
    }
}
