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

    @Test func aViewersGaugesKeepTheLastMeasuredFigureAsTheRegistrysGaugesDid() {
        let metrics = RelayMetrics()
        metrics.viewerSample("v-2", .init(lossPercent: 12.5, goodput: 250_000, rtt: .microseconds(3300), ageP95: 40), takenAt: t0)
        // No TCP reading and no frame written in the next period: goodput, RTT and age keep their last figures.
        metrics.viewerSample("v-2", .init(lossPercent: 0, goodput: nil, rtt: nil, ageP95: nil), takenAt: .now)
        metrics.viewerSample("v-1", .init(lossPercent: 0, goodput: nil, rtt: nil, ageP95: nil), takenAt: .now)
        let lines = text(metrics).split(separator: "\n").filter { $0.contains("framepipe_viewer_") }
        #expect(lines == [
            "# TYPE framepipe_viewer_loss_percent gauge",
            #"framepipe_viewer_loss_percent{viewer="v-1"} 0.0"#,
            #"framepipe_viewer_loss_percent{viewer="v-2"} 0.0"#,
            "# TYPE framepipe_viewer_goodput_bytes_per_second gauge",
            #"framepipe_viewer_goodput_bytes_per_second{viewer="v-1"} 0.0"#,
            #"framepipe_viewer_goodput_bytes_per_second{viewer="v-2"} 250000.0"#,
            "# TYPE framepipe_viewer_rtt_seconds gauge",
            #"framepipe_viewer_rtt_seconds{viewer="v-1"} 0.0"#,
            #"framepipe_viewer_rtt_seconds{viewer="v-2"} 0.0033"#,
            "# TYPE framepipe_viewer_frame_age_p95_seconds gauge",
            #"framepipe_viewer_frame_age_p95_seconds{viewer="v-1"} 0.0"#,
            #"framepipe_viewer_frame_age_p95_seconds{viewer="v-2"} 0.04"#,
        ])
        metrics.viewerDisconnected("v-1")
        metrics.viewerDisconnected("v-2")
        #expect(!text(metrics).contains("framepipe_viewer_"), "no family is written while no viewer is")
    }

    @Test func labelValuesAndNonFiniteFiguresAreWrittenAsTheExpositionFormatSpellsThem() {
        var bytes: [UInt8] = []
        ViewerGaugeTable.appendLabelValue("a\\b\"c\nd", to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == #"a\\b\"c\nd"#)
        for (value, spelled) in [(Double.nan, "NaN"), (.infinity, "+Inf"), (-.infinity, "-Inf"), (1e300, "1e+300"), (-0.5, "-0.5")] {
            bytes = []
            ViewerGaugeTable.appendValue(value, to: &bytes)
            #expect(String(decoding: bytes, as: UTF8.self) == spelled)
        }
    }
}
