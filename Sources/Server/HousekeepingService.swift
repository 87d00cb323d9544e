import RelayCore
import Logging
import ServiceLifecycle

/// The relay's clock: a tick every 100 ms that enforces every timeout in the
/// contract and produces the periodic figures.
///
/// - viewers whose link has made no progress for max(`viewerSendTimeout`,
///   10 × RTT) while frames waited are dropped;
/// - viewers are pinged every `pingInterval` and dropped after `pingTimeout`
///   without a pong;
/// - each viewer's loss over the last second updates its slow flag, and
///   its delivery policy picks its renditions from that and its link (and
///   half-way through each second from the loss so far);
/// - streams silent for `idleWarning` are logged and pinged, and closed with
///   reason `timeout` after `idleTimeout`;
/// - each live stream logs a progress line every `progressInterval`.
struct HousekeepingService: Service {
    let hub: ViewerHub
    let metrics: RelayMetrics
    let configuration: RelayConfiguration
    let logger: Logger
    static let tick = Duration.milliseconds(100)

    func run() async throws {
        await cancelWhenGracefulShutdown { await loop() }
    }

    private func loop() async {
        // The relay's own timers (idle streams, pings, progress lines) count on
        // its clock; what reads a viewer's link, stamped by the kernel's real
        // time, on the real monotonic clock. In production both are the system's.
        let clock = configuration.clock
        var lastPing = clock.instant
        var lastSample = ContinuousClock.now
        var lastProgress = clock.instant
        var reviewedHalfway = false
        while !Task.isCancelled {
            try? await clock.sleep(for: Self.tick)
            let now = clock.instant
            let real = ContinuousClock.now
            dropStuckViewers(now: real)
            checkIdleStreams(now: now)
            if now - lastPing >= configuration.pingInterval {
                lastPing = now
                pingViewers(now: now)
            }
            checkPingTimeouts(now: now)
            if real - lastSample >= .seconds(1) {
                sample(now: real, elapsed: real - lastSample)
                lastSample = real
                reviewedHalfway = false
            } else if !reviewedHalfway, real - lastSample >= .milliseconds(500) {
                reviewedHalfway = true
                logRenditionChanges(hub.reviewDelivery(now: real))
                hub.tellDemand()
            }
            if now - lastProgress >= configuration.progressInterval {
                lastProgress = now
                logProgress()
            }
        }
    }

    func dropStuckViewers(now: ContinuousClock.Instant) {
        for viewer in hub.viewersStalled(sendTimeout: configuration.viewerSendTimeout, now: now) {
            logger.warning(viewer.readerStopped ? "viewer stopped reading, dropping it" : "viewer's link made no progress, dropping it", metadata: [
                "viewer_id": "\(viewer.id)", "stalled_ms": "\(viewer.stalled.milliseconds)", "limit_ms": "\(viewer.limit.milliseconds)",
            ])
            hub.dropViewer(viewer.id, reason: .sendTimeout)
        }
    }

    func checkIdleStreams(now: ContinuousClock.Instant) {
        for stream in hub.idleStreams(now: now, warnAfter: configuration.idleWarning, closeAfter: configuration.idleTimeout) {
            if stream.timedOut {
                logger.warning("stream idle too long, closing it", metadata: ["stream_id": "\(stream.id)", "idle_ms": "\(stream.idle.milliseconds)"])
                stream.session.close(.timeout)
            } else {
                logger.notice("stream idle, pinging it", metadata: [
                    "stream_id": "\(stream.id)", "idle_ms": "\(stream.idle.milliseconds)", "started": "\(stream.started)"])
                stream.session.send(WireMessage.ping)
            }
        }
    }

    func pingViewers(now: ContinuousClock.Instant) {
        hub.pingViewers(now: now)
    }

    func checkPingTimeouts(now: ContinuousClock.Instant) {
        for id in hub.viewersWithUnansweredPing(olderThan: configuration.pingTimeout, now: now) {
            logger.warning("viewer did not answer ping, dropping it", metadata: ["viewer_id": "\(id)"])
            hub.dropViewer(id, reason: .pingTimeout)
        }
    }

    func sample(now: ContinuousClock.Instant, elapsed: Duration) {
        let sample = hub.sample(elapsed: elapsed, slowLossRatio: configuration.slowLossRatio, now: now)
        // Written after the hub's lock: one that left since `now` keeps no series (`takenAt`).
        for stream in sample.streams {
            metrics.streamSample(stream.id, fps: stream.fps, viewers: stream.viewers, ingestDelayP95: stream.ingestDelayP95, takenAt: now)
        }
        hub.tellDemand()
        metrics.viewerSamples(sample.viewers, takenAt: now)
        for change in sample.slowChanges {
            logger.info(change.slow ? "viewer is slow: it loses frames to newer ones" : "viewer keeps up again",
                        metadata: ["viewer_id": "\(change.id)"])
        }
        logRenditionChanges(sample.renditionChanges)
    }

    func logRenditionChanges(_ changes: [RelayState.RenditionChange]) {
        for change in changes {
            logger.info("viewer's rendition changed", metadata: change.logMetadata)
        }
    }

    func logProgress() {
        for stream in hub.progress() {
            logger.info("stream progress", metadata: [
                "stream_id": "\(stream.id)", "frames": "\(stream.frames)", "fps": "\(String(format: "%.1f", stream.fps))",
                "viewers": "\(stream.viewers)", "drops": "\(stream.dropsSinceLast)",
            ])
        }
    }
}
