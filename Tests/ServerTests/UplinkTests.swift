@testable import FramepipeServer
import Foundation
import NIOCore
@testable import Pipeline
import TestFixtures
import Testing

/// The streamer's side of freshness over a real socket: acks with
/// `?flow=credit`, the clock ping and pong that place capture times on the
/// relay's clock, the binary header that carries a capture time, and the
/// demand a streamer is told.
@Suite("Fresh from the lens", .timeLimit(.minutes(1)))
struct UplinkTests {
    /// Answers the relay's clock ping as the camera page does, with the
    /// same wall clock here (so the offset is about 0).
    private func answerClockPing(_ streamer: TestSocket, clientSkew: Int64 = 0) async throws {
        let ping = try await streamer.waitFor("the relay's clock ping") { $0["type"] == .string("ping") && $0["server_time"] != nil }
        let serverTime = Int64(try #require(ping["server_time"]?.numberValue))
        streamer.send(#"{"type":"pong","server_time":\#(serverTime),"client_time":\#(Date().millisecondsSince1970 + clientSkew)}"#)
    }

    /// The relay's measure of the streamer's clock, as it logged it: the offset and the round trip it was measured over (ms).
    private func clockMeasured(_ relay: RelayHandle) async throws -> (offset: Double, roundTrip: Double) {
        try await relay.log.waitFor("streamer's clock measured")
        let measured = try #require(relay.log.all.first { $0.message == "streamer's clock measured" }?.metadata)
        return (try #require(measured["offset_ms"].flatMap(Double.init)), try #require(measured["round_trip_ms"].flatMap(Double.init)))
    }

    /// Five clock pings a second apart, for a good offset soon, then one
    /// every ten seconds to follow a drifting camera clock: on the relay's
    /// clock, each carrying its time.
    @Test func aCameraIsPingedForItsClockFiveTimesASecondApartThenEveryTenSeconds() async throws {
        let clock = ManualRelayClock()
        let start = clock.now
        // A camera that sends no frame is idle at 10 s: not within this test's 24 s.
        let configuration = RelayConfiguration.test {
            $0.clock = clock
            $0.idleWarning = .seconds(60)
            $0.idleTimeout = .seconds(90)
        }
        try await withRelay(configuration) { relay in
            let streamer = try await relay.streamer("bed-1")
            var times: [Double] = []
            for offset in [0.0, 1, 2, 3, 4, 14, 24] {
                let at = start.addingTimeInterval(offset)
                if offset > 0 {
                    try await clock.waitForSleeper(until: at)
                    clock.advance(to: at.addingTimeInterval(-0.001))
                    #expect(clock.isWaiting(until: at), "not before \(offset) s")
                    clock.advance(to: at)
                }
                try await streamer.eventually("clock ping \(times.count + 1)") {
                    streamer.json(type: "ping").filter { $0["server_time"] != nil }.count == times.count + 1
                }
                times.append(try #require(streamer.json(type: "ping").last { $0["server_time"] != nil }?["server_time"]?.numberValue))
            }
            let expected = [0.0, 1, 2, 3, 4, 14, 24].map { (start.timeIntervalSince1970 + $0) * 1000 }
            for (time, want) in zip(times, expected) { #expect(abs(time - want) <= 1, "\(times)") }
            await streamer.close()
        }
    }

    @Test func aCreditStreamerGetsAnAckForEveryFrameTakenOrNot() async throws {
        try await withRelay { relay in
            let streamer = try await relay.streamer("bed-1", query: "flow=credit")
            streamer.send(TestFrames.text(0, timestamp: 1_732_500_000_000))
            streamer.send(#"{"type":"frame","frame":"data:image/jpeg;base64,!!!"}"#)
            streamer.send(TestFrames.jpeg(1))
            try await streamer.eventually("three acks") { streamer.json(type: "ack").count == 3 }
            let acks = streamer.json(type: "ack")
            #expect(acks[0]["taken"] == .bool(true))
            #expect(acks[0]["seq"] == .number(0))
            #expect(acks[0]["timestamp"] == .number(1_732_500_000_000))
            #expect(acks[0]["bytes"]?.numberValue == Double(TestPattern.dataURL(TestFrames.jpeg(0)).utf8.count), "the data URL's size")
            #expect(acks[1]["taken"] == .bool(false))
            #expect(acks[1]["reason"]?.stringValue?.isEmpty == false, "\(acks[1])")
            #expect(acks[2]["taken"] == .bool(true))
            #expect(acks[2]["seq"] == .number(2))
            let now = Double(Date().millisecondsSince1970)
            for ack in acks { #expect(abs((ack["received_at"]?.numberValue ?? 0) - now) < 60_000, "\(ack)") }
            await streamer.close()
        }
    }

    @Test func aStreamerWithoutCreditsGetsNoAcks() async throws {
        try await withRelay { relay in
            let viewer = try await relay.viewer()
            let streamer = try await relay.streamer("bed-1")
            streamer.send(TestFrames.text(0))
            try await viewer.waitFor(type: "frame", stream: "bed-1")
            // The barrier: a ping's pong comes after anything the frame caused.
            streamer.send(#"{"type":"ping"}"#)
            try await streamer.waitFor(type: "pong")
            #expect(streamer.json(type: "ack").isEmpty)
            await streamer.close()
        }
    }

    @Test func aBadFlowOptionIsRefusedBeforeTheUpgrade() async throws {
        try await withRelay { relay in
            await #expect(throws: (any Error).self) { _ = try await relay.streamer("bed-1", query: "flow=fast") }
            let response = try await RawHTTP.get(host: relay.host, port: relay.port, path: "/ws/stream/bed-1?flow=fast", upgrade: true)
            #expect(response.status == 400)
            #expect(response.reason == #"flow must be push or credit, got "fast""#, "\(response.text)")
        }
    }

    @Test func framesCarryTheirCaptureTimeOnTheRelaysClockOnceTheStreamersClockIsKnown() async throws {
        try await withRelay { relay in
            let viewer = try await relay.viewer()
            let streamer = try await relay.streamer("bed-1", query: "flow=credit")
            // Before the offset is known: no captured_at, the timestamp as sent.
            streamer.send(TestFrames.text(0, timestamp: 1_000))
            let first = try await viewer.waitFor(type: "frame", stream: "bed-1")
            #expect(first["captured_at"] == nil)
            #expect(first["timestamp"] == .number(1_000))
            // A camera whose clock is 50 s behind the relay's.
            let skew: Int64 = -50_000
            try await answerClockPing(streamer, clientSkew: skew)
            let roundTrip = try await clockMeasured(relay).roundTrip
            let taken = Date().millisecondsSince1970 + skew - 300  // captured 300 ms ago, on the camera's clock
            streamer.send(TestFrames.text(1, timestamp: taken))
            let frame = try await viewer.waitFor("the second frame") { $0["type"] == .string("frame") && $0["seq"] == .number(1) }
            let capturedAt = try #require(frame["captured_at"]?.numberValue)
            let receivedAt = try #require(frame["received_at"]?.numberValue)
            #expect(frame["timestamp"] == .number(Double(taken)))
            // On the relay's clock: the skew taken out. The camera's clock is exactly the
            // relay's minus 50 s, so the true delay is known; the relay's estimate of the
            // offset may be off by half the ping's round trip (the bound it measured), no more.
            let delay = receivedAt - capturedAt
            let trueDelay = receivedAt - Double(taken - skew)
            #expect(trueDelay >= 300)
            #expect(abs(delay - trueDelay) <= roundTrip / 2 + 1, "capture to receipt \(delay) ms, truly \(trueDelay) ms, round trip \(roundTrip) ms")
            let ack = try await streamer.waitFor("the second frame's ack") { $0["type"] == .string("ack") && $0["seq"] == .number(1) }
            #expect(ack["captured_at"]?.numberValue == capturedAt)
            #expect(ack["delay_ms"]?.numberValue == delay)
            // /api/streams and the metrics count from capture too.
            try await relay.eventually("/api/streams shows the ingest delay") {
                guard case .array(let streams) = try await relay.api("/api/streams"), let row = streams.first else { return false }
                return row["ingest_delay_ms"]?.numberValue == delay && row["ingest_delay_p95_ms"]?.numberValue == delay
            }
            try await relay.eventually("the ingest delay metric") {
                try await RawHTTP.get(host: relay.host, port: relay.port, path: "/metrics").text
                    .contains(#"framepipe_stream_ingest_delay_seconds{stream="bed-1",quantile="0.95"}"#)
            }
            await streamer.close()
        }
    }

    @Test func aBinaryFrameMayCarryItsCaptureTimeInAHeaderAndARawJPEGStillWorks() async throws {
        try await withRelay { relay in
            let viewer = try await relay.viewer("format=binary")
            let streamer = try await relay.streamer("bed-1", query: "flow=credit")
            try await answerClockPing(streamer)
            try await relay.log.waitFor("streamer's clock measured")
            let taken = Date().millisecondsSince1970 - 200
            var message = ByteBuffer()
            let header = #"{"timestamp":\#(taken)}"#
            message.writeInteger(UInt16(header.utf8.count), endianness: .big)
            message.writeString(header)
            message.writeImmutableBuffer(TestFrames.jpeg(0))
            streamer.send(message)
            // One at a time: a viewer is sent the newest frame, and two at once may arrive as one.
            try await viewer.eventually("the first binary frame") { viewer.binaryFrames.count == 1 }
            streamer.send(TestFrames.jpeg(1))
            try await viewer.eventually("two binary frames") { viewer.binaryFrames.count == 2 }
            let frames = viewer.binaryFrames
            #expect(frames[0].jpeg == TestFrames.jpeg(0), "the header is not part of the picture")
            #expect(frames[0].header["timestamp"] == .number(Double(taken)))
            // The capture time placed on the relay's clock with the offset it measured, never after
            // the frame arrived; the camera is this machine, so the offset is within half the
            // measuring round trip of zero, however slowly the machine ran it.
            let (offset, roundTrip) = try await clockMeasured(relay)
            let capturedAt = try #require(frames[0].header["captured_at"]?.numberValue)
            let receivedAt = try #require(frames[0].header["received_at"]?.numberValue)
            #expect(capturedAt == min(receivedAt, Double(taken) + offset), "offset \(offset) ms")
            #expect(abs(offset) <= roundTrip / 2 + 1, "offset \(offset) ms, round trip \(roundTrip) ms")
            #expect(frames[1].jpeg == TestFrames.jpeg(1))
            #expect(frames[1].header["timestamp"] == nil && frames[1].header["captured_at"] == nil)
            // A header that lies about its length is a bad frame with a reason, and nothing else happens.
            var bad = ByteBuffer()
            bad.writeInteger(UInt16(900), endianness: .big)
            bad.writeString("{}")
            streamer.send(bad)
            let ack = try await streamer.waitFor("the bad frame's ack") { $0["type"] == .string("ack") && $0["taken"] == .bool(false) }
            #expect(ack["reason"] == .string("bad_binary_header"))
            try await streamer.waitFor("the reason") { $0["type"] == .string("error") && ($0["reason"]?.stringValue ?? "").contains("header says 900 bytes") }
            await streamer.close()
        }
    }

    @Test func aStreamerIsToldWhetherAnyoneWatchesAndHowBigAndFast() async throws {
        try await withRelay { relay in
            let streamer = try await relay.streamer("bed-1", query: "flow=credit")
            try await streamer.waitFor("unwatched") { $0["type"] == .string("demand") && $0["watched"] == .bool(false) }
            streamer.send(TestFrames.text(0))
            // A viewer arrives: watched, at full size with no size said.
            let viewer = try await relay.viewer()
            let watched = try await streamer.waitFor("watched") { $0["type"] == .string("demand") && $0["watched"] == .bool(true) }
            #expect(watched["width"] == .null && watched["fps"] == .null, "\(watched)")
            // Its tile is 100 × 75 device pixels: the camera need send no more.
            viewer.send(#"{"type":"view","stream_id":"bed-1","width":100,"height":75}"#)
            try await streamer.waitFor("sized") { $0["type"] == .string("demand") && $0["width"] == .number(100) }
            // Hidden: nobody watches.
            viewer.send(#"{"type":"view","stream_id":"bed-1","visible":false}"#)
            try await streamer.eventually("unwatched again") { streamer.json(type: "demand").last?["watched"] == .bool(false) }
            // Visible again, then gone.
            viewer.send(#"{"type":"view","stream_id":"bed-1","visible":true}"#)
            try await streamer.eventually("watched again") { streamer.json(type: "demand").last?["watched"] == .bool(true) }
            await viewer.close()
            try await streamer.eventually("unwatched once the viewer left") { streamer.json(type: "demand").last?["watched"] == .bool(false) }
            await streamer.close()
        }
    }
}
