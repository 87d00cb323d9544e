import NIOCore
@testable import RelayCore
@testable import RelayRules
import Testing

/// Per-stream and per-viewer series come and go with what they measure.
@Suite("Relay metrics")
struct RelayMetricsTests {
    let t0 = ContinuousClock.now

    func text(_ metrics: RelayMetrics) -> String { String(buffer: metrics.render()) }

    @Test func aSampleTakenBeforeAStreamEndedDoesNotBringItsSeriesBack() {
        let metrics = RelayMetrics()
        metrics.streamSample("P-1", fps: 30, viewers: 1, ingestDelayP95: 80, takenAt: t0)
        #expect(text(metrics).contains(#"framepipe_stream_fps{stream="P-1"} 30"#))
        metrics.streamEnded("P-1")
        #expect(!text(metrics).contains(#"stream="P-1""#))
        // Housekeeping took its sample under the hub's lock before the end, and writes it after.
        metrics.streamSample("P-1", fps: 30, viewers: 1, ingestDelayP95: 80, takenAt: t0)
        #expect(!text(metrics).contains(#"stream="P-1""#), "an ended stream keeps reporting nothing")
        // A stream of that id started again later is a new one.
        metrics.streamSample("P-1", fps: 12, viewers: 0, takenAt: .now)
        #expect(text(metrics).contains(#"framepipe_stream_fps{stream="P-1"} 12"#))
    }

    @Test func aSampleTakenBeforeAViewerLeftDoesNotBringItsSeriesBack() {
        let metrics = RelayMetrics()
        metrics.viewerConnected()
        let figures = RelayMetrics.ViewerFigures(lossPercent: 5, goodput: 1000, rtt: .milliseconds(2), ageP95: 40)
        metrics.viewerSample("v-1", figures, takenAt: t0)
        #expect(text(metrics).contains(#"framepipe_viewer_loss_percent{viewer="v-1"} 5"#))
        metrics.viewerDisconnected("v-1")
        metrics.viewerSample("v-1", figures, takenAt: t0)
        #expect(!text(metrics).contains(#"viewer="v-1""#))
    }
}
