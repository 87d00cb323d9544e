import CoreMetrics
import Metrics
import NIOCore
import Pipeline
import struct Prometheus.PrometheusMetricsFactory
import class Prometheus.PrometheusCollectorRegistry
import NIOConcurrencyHelpers

/// The relay's Prometheus metrics, through swift-metrics with an explicit
/// factory so every server instance (tests run several) has its own registry.
package final class RelayMetrics: PipelineObserver, Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let framesReceived: Counter
    private let framesAccepted: Counter
    private let framesDelivered: Counter
    private let framesReplacedTotal: Counter
    private let openStreams: Gauge
    private let openViewers: Gauge
    private let stuckViewers: Counter
    private let configGeneration: Gauge
    // Only a node in a cluster has these (a standalone node's
    // "broker_up 0" would read as an outage).
    private let brokerUpGauge: Gauge?
    private let clusterPublished: Counter?
    private let clusterReceived: Counter?
    private let clusterSubscriptionsGauge: Gauge?
    private let perKey = NIOLockedValueBox<PerKey>(PerKey())
    /// Apart from `perKey`, which every frame's stage timers take: a
    /// sample's thousand viewers are written under one lock of their own.
    private let viewerSeries = NIOLockedValueBox<ViewerSeries>(ViewerSeries())

    private struct PerKey {
        var dropped: [String: Counter] = [:]
        var labelled: [String: Counter] = [:]
        var stageTimers: [String: Timer] = [:]
        var streamFps: [String: Gauge] = [:]
        var streamViewers: [String: Gauge] = [:]
        var streamIngestDelay: [String: Gauge] = [:]
        /// When a stream left. Samples are taken under the hub's
        /// lock and written after it, so one taken before the end can
        /// arrive after it: it must not bring the series back.
        var retiredStreams: [String: ContinuousClock.Instant] = [:]
        /// Drops per stage name, for `/api/pipelines`.
        var dropsByStage: [String: Int] = [:]
    }

    private struct ViewerSeries {
        /// When a viewer left (as `PerKey.retiredStreams` for streams).
        var retired: [String: ContinuousClock.Instant] = [:]
        var gauges = ViewerGaugeTable()
    }

    package init(clustered: Bool = false) {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(10), .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
            .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(100),
        ]
        self.factory = factory
        framesReceived = Counter(label: "framepipe_frames_received_total", factory: factory)
        framesAccepted = Counter(label: "framepipe_frames_accepted_total", factory: factory)
        framesDelivered = Counter(label: "framepipe_frames_delivered_total", factory: factory)
        framesReplacedTotal = Counter(label: "framepipe_frames_replaced_total", factory: factory)
        openStreams = Gauge(label: "framepipe_open_connections", dimensions: [("kind", "streamer")], factory: factory)
        openViewers = Gauge(label: "framepipe_open_connections", dimensions: [("kind", "viewer")], factory: factory)
        stuckViewers = Counter(label: "framepipe_viewers_dropped_total", factory: factory)
        configGeneration = Gauge(label: "framepipe_config_generation", factory: factory)
        configGeneration.record(1)
        if clustered {
            brokerUpGauge = Gauge(label: "framepipe_cluster_broker_up", factory: factory)
            clusterPublished = Counter(label: "framepipe_cluster_frames_published_total", factory: factory)
            clusterReceived = Counter(label: "framepipe_cluster_frames_received_total", factory: factory)
            clusterSubscriptionsGauge = Gauge(label: "framepipe_cluster_subscriptions", factory: factory)
            brokerUpGauge?.record(0)
        } else {
            (brokerUpGauge, clusterPublished, clusterReceived, clusterSubscriptionsGauge) = (nil, nil, nil, nil)
        }
    }

    package func frameReceived() { framesReceived.increment() }
    func frameAccepted(streamID: String) { framesAccepted.increment() }
    func framesDelivered(_ count: Int) { framesDelivered.increment(by: count) }
    func framesReplaced(_ count: Int) { framesReplacedTotal.increment(by: count) }
    func viewerDropped() { stuckViewers.increment() }

    package func streamerConnected() { openStreamsCount(+1) }
    package func streamerDisconnected() { openStreamsCount(-1) }
    func viewerConnected() { openViewersCount(+1) }

    func viewerDisconnected(_ id: String) {
        openViewersCount(-1)
        viewerSeries.withLockedValue { v in
            Self.retire(id, in: &v.retired)
            v.gauges.remove(id)
        }
    }

    /// Records that `id` left now; forgets what left long ago (a sample is
    /// written within a moment of being taken).
    private static func retire(_ id: String, in retired: inout [String: ContinuousClock.Instant]) {
        let now = ContinuousClock.now
        if retired.count >= 256 { retired = retired.filter { now - $0.value < .seconds(60) } }
        retired[id] = now
    }

    /// Whether a sample of `id` taken at `takenAt` may be written: not if
    /// `id` left after it was taken. A later sample (a new stream or viewer
    /// of the same id) clears the mark.
    private static func current(_ id: String, takenAt: ContinuousClock.Instant, in retired: inout [String: ContinuousClock.Instant]) -> Bool {
        guard let left = retired[id] else { return true }
        if left >= takenAt { return false }
        retired[id] = nil
        return true
    }

    private let counts = NIOLockedValueBox<(streams: Int, viewers: Int)>((0, 0))
    private func openStreamsCount(_ delta: Int) {
        let n = counts.withLockedValue { $0.streams += delta; return $0.streams }
        openStreams.record(n)
    }
    private func openViewersCount(_ delta: Int) {
        let n = counts.withLockedValue { $0.viewers += delta; return $0.viewers }
        openViewers.record(n)
    }

    /// A frame that did not reach the sink, by stage and reason code.
    package func frameDropped(stage: String, reason: String) {
        let counter = perKey.withLockedValue { p -> Counter in
            p.dropsByStage[stage, default: 0] += 1
            let key = stage + "\u{0}" + reason
            if let c = p.dropped[key] { return c }
            let c = Counter(label: "framepipe_frames_dropped_total", dimensions: [("stage", stage), ("reason", reason)], factory: factory)
            p.dropped[key] = c
            return c
        }
        counter.increment()
    }

    package var dropsByStage: [String: Int] { perKey.withLockedValue { $0.dropsByStage } }

    /// A limit refused or dropped something: `framepipe_limit_hits_total{limit=...}`.
    package func limitHit(_ limit: String) { labelledCounter("framepipe_limit_hits_total", ("limit", limit)).increment() }

    /// An upgrade or API request refused for its origin or token: `framepipe_auth_refusals_total{reason=...}`.
    package func upgradeRefused(_ reason: String) { labelledCounter("framepipe_auth_refusals_total", ("reason", reason)).increment() }

    /// A request refused for its target (a non-canonical path, no such socket, a bad stream id):
    /// `framepipe_bad_requests_total{reason=...}`.
    package func badRequest(_ reason: String) { labelledCounter("framepipe_bad_requests_total", ("reason", reason)).increment() }

    /// The audit log could not take or write a line: `framepipe_audit_lines_lost_total{why=queue_full|write_failed}`.
    package func auditLineDropped() { labelledCounter("framepipe_audit_lines_lost_total", ("why", "queue_full")).increment() }
    package func auditWriteFailed() { labelledCounter("framepipe_audit_lines_lost_total", ("why", "write_failed")).increment() }

    /// A stream's health changed: `framepipe_stream_health_events_total{kind,state}`.
    func streamHealth(kind: String, state: String) {
        labelledCounter("framepipe_stream_health_events_total", [("kind", kind), ("state", state)]).increment()
    }

    private func labelledCounter(_ label: String, _ dimension: (String, String)) -> Counter {
        labelledCounter(label, [dimension])
    }

    private func labelledCounter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        perKey.withLockedValue { p in
            let key = ([label] + dimensions.map(\.1)).joined(separator: "\u{0}")
            if let c = p.labelled[key] { return c }
            let c = Counter(label: label, dimensions: dimensions, factory: factory)
            p.labelled[key] = c
            return c
        }
    }

    package func stageFinished(stage: String, duration: Duration, outcome: StageOutcome) {
        let timer = perKey.withLockedValue { p -> Timer in
            if let t = p.stageTimers[stage] { return t }
            let t = Timer(label: "framepipe_stage_duration_seconds", dimensions: [("stage", stage)], preferredDisplayUnit: .seconds, factory: factory)
            p.stageTimers[stage] = t
            return t
        }
        timer.record(duration: duration)
    }

    /// `ingestDelayP95`: capture to receipt, ms; the series appears once the stream's frames carry capture times.
    /// `takenAt`: when the sample was taken (before the hub's lock was taken for it).
    package func streamSample(_ id: String, fps: Double, viewers: Int, ingestDelayP95: Int64? = nil, takenAt: ContinuousClock.Instant) {
        let found = perKey.withLockedValue { p -> (Gauge, Gauge, Gauge?)? in
            guard Self.current(id, takenAt: takenAt, in: &p.retiredStreams) else { return nil }
            let f = p.streamFps[id] ?? Gauge(label: "framepipe_stream_fps", dimensions: [("stream", id)], factory: factory)
            let v = p.streamViewers[id] ?? Gauge(label: "framepipe_stream_viewers", dimensions: [("stream", id)], factory: factory)
            p.streamFps[id] = f
            p.streamViewers[id] = v
            guard ingestDelayP95 != nil else { return (f, v, nil) }
            let d = p.streamIngestDelay[id] ?? Gauge(label: "framepipe_stream_ingest_delay_seconds", dimensions: [("stream", id), ("quantile", "0.95")], factory: factory)
            p.streamIngestDelay[id] = d
            return (f, v, d)
        }
        guard let (fpsGauge, viewersGauge, delayGauge) = found else { return }
        fpsGauge.record(fps)
        viewersGauge.record(viewers)
        if let ingestDelayP95 { delayGauge?.record(Double(ingestDelayP95) / 1000) }
    }

    func streamEnded(_ id: String) {
        let gauges = perKey.withLockedValue { p in
            Self.retire(id, in: &p.retiredStreams)
            return [p.streamFps.removeValue(forKey: id), p.streamViewers.removeValue(forKey: id), p.streamIngestDelay.removeValue(forKey: id)]
        }
        for gauge in gauges.compactMap({ $0 }) { gauge.destroy() }
    }

    /// One viewer's figures for a sampling period.
    package struct ViewerFigures {
        var lossPercent: Double
        /// Bytes per second its link acknowledged; nil without TCP readings.
        var goodput: Double?
        var rtt: Duration?
        /// The 95th percentile age of the frames written to it (ms).
        package var ageP95: Int?
    }

    package func viewerSample(_ id: String, _ figures: ViewerFigures, takenAt: ContinuousClock.Instant) {
        viewerSamples([(id, figures)], takenAt: takenAt)
    }

    /// A sampling period's figures for every viewer, under one lock.
    package func viewerSamples(_ samples: [(id: String, figures: ViewerFigures)], takenAt: ContinuousClock.Instant) {
        viewerSeries.withLockedValue { v in
            for (id, figures) in samples where Self.current(id, takenAt: takenAt, in: &v.retired) {
                v.gauges.record(id, figures)
            }
        }
    }

    // MARK: Cluster

    /// 1 while both connections to Redis are up: `framepipe_cluster_broker_up`.
    /// A reload by SIGHUP or the API: applied or refused (the old configuration kept).
    package func configReload(applied: Bool, generation: Int) {
        labelledCounter("framepipe_config_reloads_total", ("result", applied ? "applied" : "refused")).increment()
        if applied { configGeneration.record(generation) }
    }

    /// An event webhook's delivery: `sent`, `failed` (an attempt that will be retried or given up), `dropped` (queue full or out of attempts).
    package func webhook(_ result: String) { labelledCounter("framepipe_webhook_deliveries_total", ("result", result)).increment() }

    package func brokerUp(_ up: Bool) { brokerUpGauge?.record(up ? 1 : 0) }
    package func brokerReconnected() { labelledCounter("framepipe_cluster_connects_total", ("result", "connected")).increment() }
    package func brokerConnectFailed() { labelledCounter("framepipe_cluster_connects_total", ("result", "failed")).increment() }
    package func clusterFramePublished() { clusterPublished?.increment() }
    package func clusterFrameReceived() { clusterReceived?.increment() }
    /// A local frame other nodes will not get: `broker_down` or `backpressure`.
    package func clusterFrameNotPublished(_ reason: String) { labelledCounter("framepipe_cluster_frames_not_published_total", ("reason", reason)).increment() }
    package func clusterBadMessage(_ kind: String) { labelledCounter("framepipe_cluster_bad_messages_total", ("kind", kind)).increment() }
    package func clusterSubscriptions(_ count: Int) { clusterSubscriptionsGauge?.record(count) }

    /// The Prometheus text exposition: the registry's metrics, then each viewer's gauges.
    package func render() -> ByteBuffer {
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        viewerSeries.withLockedValue { $0.gauges }.write(into: &bytes)
        return ByteBuffer(bytes: bytes)
    }
}
