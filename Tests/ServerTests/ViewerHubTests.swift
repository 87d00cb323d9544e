import Foundation
@testable import FramepipeServer
import Logging
import NIOCore
import NIOEmbedded
import Pipeline
import Testing

/// The hub's delivery rules as plain calls, without sockets: a viewer whose
/// writer is not attached never drains, so what its mailbox holds is exactly
/// what the hub decided.
@Suite("Viewer hub")
struct ViewerHubTests {
    static func hub() -> (ViewerHub, RelayMetrics) {
        let metrics = RelayMetrics(clustered: false)
        return (ViewerHub(logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }, metrics: metrics), metrics)
    }

    static func frame(_ stream: String, seq: UInt64) -> Frame {
        Frame(streamID: stream, seq: seq, arrival: .now, payload: .binary(TestFrames.jpeg(Int(seq))))
    }

    @Test func aNewerFrameReplacesAnUnsentOneAndIsCounted() throws {
        let (hub, metrics) = Self.hub()
        let (commands, continuation) = AsyncStream.makeStream(of: StreamSessionHandle.Command.self)
        _ = commands
        let session = StreamSessionHandle(id: 1, remoteAddress: "test", commands: continuation)
        #expect(hub.connectStream("P-1", session: session) != nil)
        let added = hub.addViewer(format: .binary, streams: nil, quality: .full, remoteAddress: "test",
                                  eventLoop: EmbeddedEventLoop(), close: {})
        let viewer = try #require(added)
        for seq in 0..<3 { hub.publish(Self.frame("P-1", seq: UInt64(seq))) }
        #expect(viewer.mailbox.statistics.replaced == 2)
        #expect(String(buffer: metrics.render()).contains("framepipe_frames_replaced_total 2"))
        // Housekeeping's sample turns the mailbox's figures into the loss gauge: 2 replaced, none delivered.
        HousekeepingService(hub: hub, metrics: metrics, configuration: .init(), logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
            .sample(now: .now, elapsed: .seconds(1))
        #expect(String(buffer: metrics.render()).contains(#"framepipe_viewer_loss_percent{viewer="v-1"} 100.0"#))
    }
}
