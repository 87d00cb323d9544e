@testable import RelayCore
import Foundation
@testable import FramepipeServer
import Logging
import NIOCore
import NIOEmbedded
@testable import Pipeline
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
        #expect(try hub.connectStream("P-1", session: session) != nil)
        let added = try hub.addViewer(format: .binary, streams: nil, quality: .full, writer: Self.writer(metrics), remoteAddress: "test",
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

extension ViewerHubTests {
    /// A local stream on the hub, with its session's commands readable.
    static func connect(_ hub: ViewerHub, _ id: String, session number: UInt64 = 1)
        -> (session: StreamSessionHandle, commands: AsyncStream<StreamSessionHandle.Command>, firstSeq: UInt64)? {
        let (commands, continuation) = AsyncStream.makeStream(of: StreamSessionHandle.Command.self)
        let session = StreamSessionHandle(id: number, remoteAddress: "test", commands: continuation)
        guard let connected = try? hub.connectStream(id, session: session) else { return nil }
        return (session, commands, connected.firstSeq)
    }

    static func viewer(_ hub: ViewerHub, scope: StreamScope = .all) -> ViewerHub.Viewer? {
        try? hub.addViewer(format: .json, streams: nil, quality: .auto, scope: scope, writer: writer(hub.metrics), remoteAddress: "test",
                           eventLoop: EmbeddedEventLoop(), close: {})
    }

    /// A WebSocket viewer's writer, never added to a channel: the test reads its mailbox.
    static func writer(_ metrics: RelayMetrics, credits: Int? = nil) -> ViewerChannelHandler {
        ViewerChannelHandler(mailbox: ViewerMailbox(creditLimit: credits), metrics: metrics) {}
    }

    /// The control messages waiting in a viewer's mailbox, by type (frames skipped).
    static func controlTypes(_ viewer: ViewerHub.Viewer) -> [String] {
        var types: [String] = []
        while let item = viewer.mailbox.poll() {
            guard case .control = item.kind, let json = try? JSONParser.parse(String(buffer: WebSocketWire.payload(of: item.bytes))) else { continue }
            types.append([json["type"]?.stringValue, json["stream_id"]?.stringValue, json["reason"]?.stringValue]
                .compactMap { $0 }.joined(separator: " "))
        }
        return types
    }

    @Test func shutdownEndsEveryStartedStreamForItsViewersThenClosesTheStreamers() async throws {
        let (hub, _) = Self.hub()
        let viewer = try #require(Self.viewer(hub))
        let started = try #require(Self.connect(hub, "P-1"))
        hub.publish(Self.frame("P-1", seq: 0))
        let silent = try #require(Self.connect(hub, "P-2", session: 2))  // connected, no frame yet: viewers never heard of it
        hub.beginShutdown()
        #expect(Self.controlTypes(viewer) == ["viewer_connected", "stream_started P-1", "stream_ended P-1 shutdown"])
        #expect(viewer.mailbox.isFinished)
        for connection in [started, silent] {
            // What it was told before (its demand) comes first; then the close.
            var closed: StreamEndReason?
            for await command in connection.commands {
                if case .close(let reason) = command { closed = reason; break }
            }
            #expect(closed == .shutdown)
        }
        #expect(Self.connect(hub, "P-3") == nil, "no new stream while shutting down")
    }

}

/// The slow/fast hysteresis, window by window.
@Suite("Slow viewer verdict")
struct SlowViewerVerdictTests {
    /// (offered, replaced) per window, and the verdict changes expected after each.
    @Test(arguments: [
        ("one lossy window makes it slow", [(20, 5)], [true]),
        ("a window too small to judge says nothing", [(5, 5)], [nil]),
        ("three good windows make it fast again", [(20, 5), (20, 0), (20, 0), (20, 0)], [true, nil, nil, false]),
        ("a middling window restarts the count", [(20, 5), (20, 0), (20, 2), (20, 0), (20, 0)], [true, nil, nil, nil, nil]),
        ("at the threshold is not over it", [(20, 4)], [nil]),
    ] as [(String, [(Int, Int)], [Bool?])])
    func verdicts(_ name: String, windows: [(Int, Int)], expected: [Bool?]) {
        var verdict = SlowViewerVerdict()
        let changes = windows.map { verdict.close(offered: $0.0, replaced: $0.1, threshold: 0.2) }
        #expect(changes == expected, "\(name)")
    }
}
