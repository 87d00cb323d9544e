import Foundation
@testable import FramepipeServer
import Logging
@testable import Pipeline
import ServiceLifecycle
import Testing

/// The shutdown sequence on the relay's clock, through a real relay shut down
/// gracefully as SIGTERM would (its service group told by the one it runs in):
/// with `--drain-delay`, `/readyz` turns 503 at once and frames keep flowing
/// for exactly the delay, under the relay's usual rules; at its end every
/// viewer gets `stream_ended` (reason `shutdown`) and the relay stops.
@Suite("Shutdown")
struct ShutdownTests {
    /// Runs a relay as one service of a group the test can shut down gracefully.
    private struct RunningRelay: Service {
        let server: RelayServer
        let onListening: @Sendable (Int) async -> Void
        func run() async throws { try await server.run(onListening: onListening) }
    }

    private struct Draining {
        let relay: RelayHandle
        let clock: ManualRelayClock
        let triggerShutdown: @Sendable () async -> Void
        let stopped: Task<Void, any Error>

        /// A viewer, and a camera whose first frame it has: the relay is serving.
        func viewerAndCamera() async throws -> (viewer: TestSocket, camera: TestSocket) {
            let viewer = try await relay.viewer()
            let camera = try await relay.streamer("cam")
            camera.send(TestFrames.text(0))
            try await viewer.waitFor("the first frame") { $0["type"] == .string("frame") }
            return (viewer, camera)
        }

        /// Shuts the relay down as SIGTERM would; returns once it is waiting out the drain delay.
        func shutDown() async throws {
            let delayEnds = clock.now.addingTimeInterval(30)
            await triggerShutdown()
            try await clock.waitForSleeper(until: delayEnds)
        }
    }

    /// A relay with a 30 s drain delay on a manual clock; `body` shuts it down when it wants.
    private func withDrainingRelay(_ change: (inout RelayConfiguration) -> Void = { _ in },
                                   _ body: (Draining) async throws -> Void) async throws {
        let clock = ManualRelayClock()
        let configuration = RelayConfiguration.test {
            $0.clock = clock
            $0.drainDelay = .seconds(30)
            change(&$0)
        }
        let log = CapturedLog()
        let logger = Logger(label: "framepipe-test") { _ in CapturedLog.Handler(log: log) }
        let server = try RelayServer(configuration: configuration, pipelines: PipelineConfigLoader(registry: .builtIn).load(text: testPipelines),
                                     source: nil, logger: logger)
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let group = ServiceGroup(services: [RunningRelay(server: server, onListening: { portContinuation.yield($0) })], logger: logger)
        let running = Task { try await group.run() }
        defer { running.cancel() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        try await body(Draining(relay: RelayHandle(port: port, log: log), clock: clock, triggerShutdown: { await group.triggerGracefulShutdown() },
                                stopped: running))
    }

    @Test func theDrainDelayKeepsFramesFlowingForItsLengthThenEveryStreamEnds() async throws {
        // Nothing else of the relay's may act in the 30 s the clock moves: no idle or ping timeouts.
        try await withDrainingRelay({
            $0.idleWarning = .seconds(300); $0.idleTimeout = .seconds(600)
            $0.pingInterval = .seconds(300); $0.pingTimeout = .seconds(600)
        }) { draining in
            let (relay, clock) = (draining.relay, draining.clock)
            let (viewer, streamer) = try await draining.viewerAndCamera()
            let shutdownAt = clock.now
            // The coordinator has armed itself for the delay's end: from here the relay is draining.
            try await draining.shutDown()
            let readiness = try await RawHTTP.get(port: relay.port, path: "/readyz")
            #expect(readiness.status == 503 && (try? JSONParser.parse(readiness.text))?["state"] == .string("draining"), "\(readiness.text)")

            // A moment before the delay ends, frames still flow and no stream has ended.
            clock.advance(to: shutdownAt.addingTimeInterval(29.9))
            streamer.send(TestFrames.text(1))
            try await viewer.waitFor("a frame while draining") { $0["type"] == .string("frame") && $0["seq"] == .number(1) }
            #expect(viewer.json(type: "stream_ended").isEmpty)

            clock.advance(to: shutdownAt.addingTimeInterval(30))
            #expect(try await viewer.waitFor(type: "stream_ended", stream: "cam")["reason"] == .string("shutdown"))
            // Every connection closed, the relay stops by itself.
            try await draining.stopped.value
            #expect(relay.log.contains("connections closed"))
        }
    }

    /// Housekeeping stops after the shutdown sequence, not before it: a
    /// camera that goes silent while the relay drains is still warned at
    /// 10 s and timed out at 15 s, not kept until the delay's end.
    @Test func aSilentCameraIsTimedOutWhileTheRelayDrains() async throws {
        try await withDrainingRelay { draining in
            let (relay, clock) = (draining.relay, draining.clock)
            let (viewer, _) = try await draining.viewerAndCamera()
            let silentFrom = clock.now
            try await draining.shutDown()
            try await TimeoutAndReplacementTests.movedAndChecked(clock, to: silentFrom.addingTimeInterval(10))
            try await relay.log.waitFor("stream idle, pinging it")
            #expect(viewer.json(type: "stream_ended").isEmpty)
            try await TimeoutAndReplacementTests.movedAndChecked(clock, to: silentFrom.addingTimeInterval(15))
            #expect(try await viewer.waitFor(type: "stream_ended", stream: "cam")["reason"] == .string("timeout"))
        }
    }
}
