import Logging
import ServiceLifecycle

/// The relay's clock: a tick every 100 ms that enforces every timeout in the
/// contract and produces the periodic figures.
///
/// - viewers whose current write has waited `viewerSendTimeout` are dropped;
/// - viewers are pinged every `pingInterval` and dropped after `pingTimeout`
///   without a pong;
/// - each viewer's loss over the last second updates its slow flag;
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
        var lastPing = ContinuousClock.now
        var lastSample = ContinuousClock.now
        var lastProgress = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.tick)
            let now = ContinuousClock.now
            dropStuckViewers(now: now)
            checkIdleStreams(now: now)
            if now - lastPing >= configuration.pingInterval {
                lastPing = now
                pingViewers(now: now)
            }
            checkPingTimeouts(now: now)
            if now - lastSample >= .seconds(1) {
                sample(now: now, elapsed: now - lastSample)
                lastSample = now
            }
            if now - lastProgress >= configuration.progressInterval {
                lastProgress = now
                logProgress()
            }
        }
    }

    func dropStuckViewers(now: ContinuousClock.Instant) {
        let stuck = hub.withState { view in
            view.viewers.values.filter { ($0.mailbox.blockedFor(now: now) ?? .zero) >= configuration.viewerSendTimeout }.map(\.id)
        }
        for id in stuck {
            logger.warning("viewer accepts nothing, dropping it", metadata: [
                "viewer_id": "\(id)", "send_timeout_ms": "\(configuration.viewerSendTimeout.milliseconds)",
            ])
            hub.dropViewer(id, reason: .sendTimeout)
        }
    }

    func checkIdleStreams(now: ContinuousClock.Instant) {
        let actions: [(String, StreamSessionHandle, Duration, Bool)] = hub.withState { view in
            var actions: [(String, StreamSessionHandle, Duration, Bool)] = []
            // Another node's streams are that node's to time out.
            for (id, stream) in view.streams {
                guard let session = stream.session else { continue }
                let idle = now - stream.lastActivity
                if idle >= configuration.idleTimeout {
                    actions.append((id, session, idle, true))
                } else if idle >= configuration.idleWarning, !stream.idleWarned {
                    view.streams[id]?.idleWarned = true
                    actions.append((id, session, idle, false))
                }
            }
            return actions
        }
        for (id, session, idle, timedOut) in actions {
            if timedOut {
                logger.warning("stream idle too long, closing it", metadata: ["stream_id": "\(id)", "idle_ms": "\(idle.milliseconds)"])
                session.close(.timeout)
            } else {
                logger.notice("stream idle, pinging it", metadata: ["stream_id": "\(id)", "idle_ms": "\(idle.milliseconds)"])
                session.send(WireMessage.ping)
            }
        }
    }

    func pingViewers(now: ContinuousClock.Instant) {
        hub.pingViewers(now: now)
    }

    func checkPingTimeouts(now: ContinuousClock.Instant) {
        let silent = hub.withState { view in
            view.viewers.values.filter { $0.pingSentAt.map { now - $0 >= configuration.pingTimeout } ?? false }.map(\.id)
        }
        for id in silent {
            logger.warning("viewer did not answer ping, dropping it", metadata: ["viewer_id": "\(id)"])
            hub.dropViewer(id, reason: .pingTimeout)
        }
    }

    func sample(now: ContinuousClock.Instant, elapsed: Duration) {
        let seconds = elapsed.seconds
        let changes: [(String, Bool)] = hub.withState { view in
            for (id, stream) in view.streams {
                let viewers = view.viewers.values.filter { $0.watches(id) }.count
                view.streams[id]?.fps = Double(stream.frames - stream.fpsSampleFrames) / seconds
                view.streams[id]?.fpsSampleFrames = stream.frames
                metrics.streamSample(id, fps: view.streams[id]!.fps, viewers: viewers)
            }
            var changes: [(String, Bool)] = []
            for (id, viewer) in view.viewers {
                if let slow = viewer.mailbox.updateSlowness(threshold: configuration.slowLossRatio) {
                    viewer.slow = slow  // the hub's lock is held here
                    changes.append((id, slow))
                }
                metrics.viewerSample(id, lossPercent: viewer.mailbox.statistics.lossPercent)
            }
            return changes
        }
        for (id, slow) in changes {
            logger.info(slow ? "viewer is slow, sending it the low rendition" : "viewer keeps up again, sending it full frames",
                        metadata: ["viewer_id": "\(id)"])
        }
    }

    func logProgress() {
        let lines: [(String, Logger.Metadata)] = hub.withState { view in
            view.streams.filter(\.value.started).sorted { $0.key < $1.key }.map { id, stream in
                let viewers = view.viewers.values.filter { $0.watches(id) }.count
                view.streams[id]?.lastProgressFrames = stream.frames
                view.streams[id]?.lastProgressDrops = stream.drops + stream.errors
                return (id, [
                    "stream_id": "\(id)", "frames": "\(stream.frames)", "fps": "\(String(format: "%.1f", stream.fps))",
                    "viewers": "\(viewers)", "drops": "\(stream.drops + stream.errors - stream.lastProgressDrops)",
                ])
            }
        }
        for (_, metadata) in lines { logger.info("stream progress", metadata: metadata) }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
