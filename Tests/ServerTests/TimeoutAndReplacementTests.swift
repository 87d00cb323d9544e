import Foundation
@testable import FramepipeServer
import NIOCore
@testable import Pipeline
import Testing

@Suite("Timeouts, pings and replacement", .timeLimit(.minutes(1)))
struct TimeoutAndReplacementTests {
    /// On a clock the test moves: warned at exactly `idleWarning` of
    /// silence, closed at exactly `idleTimeout`, however loaded the machine.
    @Test func idleStreamIsWarnedAndPingedThenClosedWithTimeout() async throws {
        let clock = ManualRelayClock()
        let config = RelayConfiguration.test { $0.clock = clock }  // idle warning 10 s, timeout 15 s
        try await withRelay(config) { relay in
            let viewer = try await relay.viewer()
            let streamer = try await relay.streamer("cam")
            streamer.send(TestFrames.text(0))
            try await viewer.waitFor(type: "frame", stream: "cam")
            let silentFrom = clock.now
            try await Self.movedAndChecked(clock, to: silentFrom.addingTimeInterval(9.9))
            try await viewer.barrier()
            #expect(!relay.log.contains("stream idle, pinging it"), "no warning before 10 s")
            try await Self.movedAndChecked(clock, to: silentFrom.addingTimeInterval(10))
            // The idle ping is the bare one; the relay's clock pings carry its time.
            try await streamer.waitFor("the idle ping") { $0["type"] == .string("ping") && $0["server_time"] == nil }
            #expect(relay.log.contains("stream idle, pinging it", ["stream_id": "cam", "idle_ms": "10000"]))
            try await Self.movedAndChecked(clock, to: silentFrom.addingTimeInterval(14.9))
            try await viewer.barrier()
            #expect(viewer.json(type: "stream_ended").isEmpty, "a warning does not end the stream")
            clock.advance(to: silentFrom.addingTimeInterval(15))
            let ended = try await viewer.waitFor(type: "stream_ended", stream: "cam")
            #expect(ended["reason"] == .string("timeout"))
            try await streamer.waitUntilFinished()
            #expect(relay.log.contains("stream idle too long, closing it", ["stream_id": "cam", "idle_ms": "15000"]))
        }
    }

    /// Moves the clock to `instant` and waits until housekeeping has looked at
    /// that time and armed for its next tick: what it would do then is done.
    static func movedAndChecked(_ clock: ManualRelayClock, to instant: Date) async throws {
        clock.advance(to: instant)
        try await clock.waitForSleeper(until: instant.addingTimeInterval(HousekeepingService.tick.seconds))
    }

    @Test func anyMessageKeepsAStreamAlive() async throws {
        let clock = ManualRelayClock()
        try await withRelay(.test { $0.clock = clock }) { relay in
            let viewer = try await relay.viewer()
            let streamer = try await relay.streamer("cam")
            // 3 × 9 s, past the 15 s timeout, each step after a message: a frame, then a ping.
            for i in 0..<3 {
                streamer.send(i % 2 == 0 ? TestFrames.text(i) : #"{"type":"ping"}"#)
                if i % 2 == 0 {
                    try await viewer.waitFor("frame \(i)") { $0["type"] == .string("frame") && $0["seq"] == .number(Double(i / 2)) }
                } else {
                    try await streamer.waitFor("pong \(i)") { $0["type"] == .string("pong") }
                }
                try await Self.movedAndChecked(clock, to: clock.now.addingTimeInterval(9))
            }
            try await viewer.barrier()
            #expect(viewer.json(type: "stream_ended").isEmpty)
            #expect(!relay.log.contains("stream idle, pinging it"))
        }
    }

    @Test func serverPingsViewersAndDropsOnesThatNeverAnswer() async throws {
        let clock = ManualRelayClock()
        let config = RelayConfiguration.test { $0.clock = clock; $0.pingInterval = .seconds(45); $0.pingTimeout = .seconds(15) }
        try await withRelay(config) { relay in
            let start = clock.now
            let silent = try await relay.viewer()
            let answering = try await relay.viewer(answerPings: true)
            try await Self.movedAndChecked(clock, to: start.addingTimeInterval(45))
            try await silent.waitFor(type: "ping")
            try await answering.waitFor(type: "ping")
            // Its pong went out before this ping: once this is answered, the pong is in.
            try await answering.barrier()
            // The next round pings only viewers that answered the last.
            try await Self.movedAndChecked(clock, to: start.addingTimeInterval(90))
            try await answering.eventually("a second ping") { answering.json(type: "ping").count == 2 }
            try await silent.waitUntilFinished()
            #expect(silent.json(type: "ping").count == 1, "dropped at 45 + 15 s, not pinged again")
            #expect(relay.log.contains("viewer did not answer ping, dropping it", ["viewer_id": "v-1"]))
            #expect(relay.log.contains("viewer removed", ["viewer_id": "v-1", "reason": "ping_timeout"]))
            try await answering.barrier()
            #expect(!answering.isFinished)
        }
    }

    @Test func sameStreamIDReconnectingReplacesTheFirstWithoutStreamEnded() async throws {
        try await withRelay { relay in
            let viewer = try await relay.viewer()
            let first = try await relay.streamer("cam")
            first.send(TestFrames.text(0))
            try await viewer.waitFor(type: "frame", stream: "cam")
            let second = try await relay.streamer("cam")
            try await first.waitUntilFinished()
            second.send(TestFrames.text(1))
            try await viewer.waitFor("a frame from the new connection") { $0["type"] == .string("frame") && $0["seq"] == .number(1) }
            #expect(viewer.json(type: "stream_ended").isEmpty)
            #expect(viewer.json(type: "stream_started").count == 1)
            #expect(relay.log.contains("stream connection replaced by a new one", ["stream_id": "cam"]))
            await second.close()
            #expect(try await viewer.waitFor(type: "stream_ended", stream: "cam")["reason"] == .string("closed"))
        }
    }

    @Test func streamerVanishingWithoutCloseFrameEndsTheStream() async throws {
        try await withRelay { relay in
            let viewer = try await relay.viewer()
            let raw = try await RawWebSocket.connect(port: relay.port, path: "/ws/stream/cam")
            try await raw.send(text: TestFrames.text(0))
            try await viewer.waitFor(type: "frame", stream: "cam")
            await raw.drop()
            #expect(try await viewer.waitFor(type: "stream_ended", stream: "cam")["reason"] == .string("closed"))
        }
    }

    @Test func viewerKilledMidFrameLeavesTheOthersReceiving() async throws {
        try await withRelay { relay in
            let viewers = try await [relay.viewer(), relay.viewer(), relay.viewer()]
            let raw = try await RawWebSocket.connect(port: relay.port, path: "/ws/viewer")
            let streamer = try await relay.streamer("cam")
            streamer.send(TestFrames.text(0))
            try await raw.readSome()  // part of the first messages, then vanish
            await raw.drop()
            await viewers[1].close()
            for i in 1...5 { streamer.send(TestFrames.text(i)) }
            for v in [viewers[0], viewers[2]] {
                try await v.waitFor("all 6 frames") { $0["type"] == .string("frame") && $0["seq"] == .number(5) }
            }
            try await relay.eventually("both departed viewers removed") {
                guard case .array(let list) = try await relay.api("/api/viewers") else { return false }
                return list.count == 2
            }
        }
    }
}
