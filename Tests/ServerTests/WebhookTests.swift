import Foundation
@testable import FramepipeServer
@testable import Pipeline
import Testing

/// Event webhooks against a real local HTTP receiver: signed, in order,
/// retried with backoff, bounded, and never in a frame's way.
@Suite("Event webhooks", .timeLimit(.minutes(1)))
struct WebhookTests {
    static let secret = Array("webhook-test-secret-0123456789-abcdefgh".utf8)

    static func settings(_ urls: [String], _ change: (inout WebhookSettings) -> Void = { _ in }) -> WebhookSettings {
        var settings = WebhookSettings(urls: urls, secret: secret, firstRetryDelay: .milliseconds(40))
        change(&settings)
        return settings
    }

    @Test func aStreamsLifeAndADroppedViewerArePostedSignedAndRetriedUntilAccepted() async throws {
        let receiver = try await WebhookReceiver(failFirst: 2)
        defer { Task { await receiver.stop() } }
        // The relay's timers (idle 10/15 s, pings every 45 s, answered within 15 s)
        // and the webhooks' retries run on a clock the test moves: the first
        // event's retries go out as it moves (their timing is the next test's).
        let clock = ManualRelayClock()
        let configuration = RelayConfiguration.test {
            $0.webhooks = Self.settings([receiver.url])
            $0.clock = clock
        }
        try await withRelay(configuration) { relay in
            let start = clock.now
            let silent = try await relay.viewer()  // v-1 answers no ping: dropped with ping_timeout
            let watcher = try await relay.viewer(answerPings: true)  // v-2 stays and sees the frame go through
            let streamer = try await relay.streamer("P-ICU-4")
            streamer.send(TestFrames.text(0))
            try await watcher.waitFor(type: "frame", stream: "P-ICU-4")
            // stream_started is refused (503) and its retry waits 40-50 ms of the clock:
            // the move to 10 s sends it, refused again, and the move to 15 s the third.
            _ = try await Self.retryArmed(clock, relay, base: 0.04)
            // Then the camera goes silent: idle at 10 s, ended with timeout at 15 s.
            try await TimeoutAndReplacementTests.movedAndChecked(clock, to: start.addingTimeInterval(10))
            _ = try await Self.retryArmed(clock, relay, base: 0.08)
            try await TimeoutAndReplacementTests.movedAndChecked(clock, to: start.addingTimeInterval(15))
            // Pings at 45 s; the watcher's pong is in once its own ping is answered; v-1 is dropped at 60 s.
            try await TimeoutAndReplacementTests.movedAndChecked(clock, to: start.addingTimeInterval(45))
            try await watcher.waitFor(type: "ping")
            try await watcher.barrier()
            try await TimeoutAndReplacementTests.movedAndChecked(clock, to: start.addingTimeInterval(60))
            try await silent.waitUntilFinished()
            try await relay.eventually("four events accepted", timeout: .seconds(10)) { receiver.accepted.count == 4 }
            let accepted = receiver.accepted.map { try! JSONParser.parse($0.body) }
            let streamEvents = accepted.filter { $0["stream_id"] != nil }
            #expect(streamEvents.map { $0["type"] } == [.string("stream_started"), .string("stream_idle"), .string("stream_ended")])
            #expect(streamEvents.allSatisfy { $0["stream_id"] == .string("P-ICU-4") })
            #expect(streamEvents[2]["reason"] == .string("timeout") && streamEvents[2]["frames"] == .number(1))
            #expect(streamEvents[1]["silent_ms"] == .number(10_000))
            let dropped = try #require(accepted.first { $0["type"] == .string("viewer_dropped") })
            #expect(dropped["viewer_id"] == .string("v-1") && dropped["reason"] == .string("ping_timeout"))
            #expect(accepted.allSatisfy { $0["node"]?.stringValue?.isEmpty == false && $0["at"]?.stringValue != nil })

            // Every request is signed over its timestamp and body, and says what it carries.
            let now = Int(Date().timeIntervalSince1970)
            for request in receiver.requests {
                let signature = try #require(request.headers["x-framepipe-signature"])
                #expect(WebhookSignature.verify(header: signature, body: request.body, secret: Self.secret, now: now))
                #expect(!WebhookSignature.verify(header: signature, body: request.body, secret: TestTokens.secret, now: now))
                #expect(request.headers["content-type"] == "application/json")
                #expect(request.headers["x-framepipe-event"] == (try JSONParser.parse(request.body))["type"]?.stringValue)
            }
            // The first event failed twice (503), then got through: three tries, one delivery id.
            let first = receiver.requests.prefix(3)
            #expect(first.map(\.status) == [503, 503, 204])
            #expect(Set(first.map { $0.headers["x-framepipe-delivery"] }).count == 1)
            #expect(Set(first.map(\.body)).count == 1)
            // The relay counts a delivery once it has read the receiver's answer, which can be
            // after the receiver counted it (a load check read "sent 3" at once).
            var metrics = ""
            try await relay.eventually("four deliveries counted") {
                metrics = try await RawHTTP.get(port: relay.port, path: "/metrics").text
                return metrics.contains(#"framepipe_webhook_deliveries_total{result="sent"} 4"#)
            }
            #expect(metrics.contains(#"framepipe_webhook_deliveries_total{result="failed"} 2"#))
            // The first event posted, stream_started, took three tries.
            let firstType = try #require(try JSONParser.parse(first.first!.body)["type"]?.stringValue)
            #expect(relay.log.contains("webhook delivered after retries", ["event": firstType, "attempts": "3"]))
        }
    }

    /// When the relay's retry is due: it waits `base` seconds from now (the
    /// clock stands still while the test looks), up to a quarter longer (jitter
    /// is a unit in 0..<1). The tests' bases keep that window clear of every
    /// other wait (a camera's clock pings at exactly 1 s: a load check found a
    /// 1 s base taking one for the retry).
    static func retryArmed(_ clock: ManualRelayClock, _ relay: RelayHandle, base: Double) async throws -> Date {
        let from = clock.now
        var retryAt: Date?
        try await relay.eventually("a retry armed") {
            retryAt = clock.earliestSleeper(in: from.addingTimeInterval(base)..<from.addingTimeInterval(base * 1.25))
            return retryAt != nil
        }
        return retryAt!
    }

    @Test func aFailedDeliveryIsRetriedAfterItsJitteredBackoffAndNotBefore() async throws {
        let receiver = try await WebhookReceiver(failFirst: 2)
        defer { Task { await receiver.stop() } }
        let clock = ManualRelayClock()
        // Waits of 1.5 s then 3 s, each up to a quarter longer (jitter).
        let configuration = RelayConfiguration.test {
            $0.webhooks = Self.settings([receiver.url]) { $0.firstRetryDelay = .seconds(1.5) }
            $0.clock = clock
        }
        try await withRelay(configuration) { relay in
            let streamer = try await relay.streamer("P-ICU-5")
            streamer.send(TestFrames.text(0))
            for (attempt, base) in [(1, 1.5), (2, 3.0)] {
                try await relay.eventually("attempt \(attempt) answered") { receiver.requests.count == attempt }
                // The retry is armed for its backoff from the failure, within its jitter;
                // until the clock gets there, nothing more is sent.
                let retryAt = try await Self.retryArmed(clock, relay, base: base)
                clock.advance(to: retryAt.addingTimeInterval(-0.001))
                #expect(clock.isWaiting(until: retryAt))
                #expect(receiver.requests.count == attempt)
                clock.advance(to: retryAt)
            }
            try await relay.eventually("the third attempt accepted") { receiver.accepted.count == 1 }
            #expect(receiver.requests.map(\.status) == [503, 503, 204])
            try await relay.log.waitFor("webhook delivered after retries", ["event": "stream_started", "attempts": "3"])
            await streamer.close()
        }
    }

    @Test func aCameraThatNeverSendsAFrameRaisesNoEvent() async throws {
        let receiver = try await WebhookReceiver()
        defer { Task { await receiver.stop() } }
        let clock = ManualRelayClock()
        let configuration = RelayConfiguration.test {
            $0.webhooks = Self.settings([receiver.url])
            $0.clock = clock  // idle warning at 10 s, close at 15 s of the clock the test moves
        }
        try await withRelay(configuration) { relay in
            let silent = try await relay.streamer("P-ICU-9")
            // Its ping answered: the relay has registered the stream (and counts its silence from then).
            silent.send(#"{"type":"ping"}"#)
            try await silent.waitFor(type: "pong")
            let from = clock.now
            try await TimeoutAndReplacementTests.movedAndChecked(clock, to: from.addingTimeInterval(10))
            try await TimeoutAndReplacementTests.movedAndChecked(clock, to: from.addingTimeInterval(15))
            try await silent.waitUntilFinished()
            #expect(relay.log.contains("stream idle, pinging it", ["stream_id": "P-ICU-9", "started": "false"]))
            // Events are posted one after another: once a later stream's start
            // is in, anything the silent one had raised would be in too.
            let streamer = try await relay.streamer("P-ICU-10")
            streamer.send(TestFrames.text(0))
            try await relay.eventually("the later start accepted") { receiver.accepted.count >= 1 }
            let first = try JSONParser.parse(receiver.accepted[0].body)
            #expect(first["type"] == .string("stream_started") && first["stream_id"] == .string("P-ICU-10"))
            #expect(!receiver.accepted.contains { $0.body.contains("P-ICU-9") })
            await streamer.close()
        }
    }

    @Test func aReceiverThatNeverAnswersDelaysNoFrame() async throws {
        let hung = try await WebhookReceiver(silent: true)
        defer { Task { await hung.stop() } }
        // If a frame waited on a delivery it would wait this long, far past
        // how long a test waits for the frame.
        let configuration = RelayConfiguration.test {
            $0.webhooks = Self.settings([hung.url]) { $0.timeout = .seconds(60); $0.maxAttempts = 1 }
        }
        try await withRelay(configuration) { relay in
            let streamers = try await Self.sixStreamsSeenByAViewer(relay)
            try await relay.eventually("the first start held by the receiver") { hung.requests.count == 1 }
            #expect(hung.requests[0].body.contains("stream_started"))
            for streamer in streamers { await streamer.close() }
        }
    }

    @Test func aDeadReceiverIsGivenUpAndAFullQueueDrops() async throws {
        // One receiver holds its first request for the whole test: its queue (2) fills,
        // whatever the pace of events. Nothing listens at another: each attempt is refused.
        let hung = try await WebhookReceiver(silent: true)
        defer { Task { await hung.stop() } }
        let dead = try await WebhookReceiver()
        let deadURL = dead.url
        await dead.stop()
        let alive = try await WebhookReceiver()
        defer { Task { await alive.stop() } }
        let clock = ManualRelayClock()
        let configuration = RelayConfiguration.test {
            $0.webhooks = Self.settings([hung.url, deadURL, alive.url]) {
                $0.queueDepth = 2; $0.maxAttempts = 2; $0.firstRetryDelay = .seconds(1.5); $0.timeout = .seconds(60)
            }
            $0.clock = clock
        }
        try await withRelay(configuration) { relay in
            let streamers = try await Self.sixStreamsSeenByAViewer(relay)
            // The live receiver has its own queue: it gets every event, the others' troubles aside.
            try await relay.eventually("six starts at the live receiver") { alive.accepted.count == 6 }
            // Six events for the hung one: one held, two queued, the rest dropped.
            try await relay.log.waitFor("webhook queue full; event dropped", ["url": hung.url])
            // The dead one's first attempt is refused; its one retry waits for the clock.
            clock.advance(to: try await Self.retryArmed(clock, relay, base: 1.5))
            try await relay.log.waitFor("webhook given up; event lost", ["url": deadURL, "attempts": "2"])
            try await relay.eventually("only the held request at the hung receiver") { hung.requests.count == 1 }
            let metrics = try await RawHTTP.get(port: relay.port, path: "/metrics").text
            #expect(metrics.contains(#"framepipe_webhook_deliveries_total{result="dropped"}"#))
            for streamer in streamers { await streamer.close() }
        }
    }

    /// Six cameras that each send a frame, every frame seen by a viewer:
    /// six stream_started events raised while frames flow.
    static func sixStreamsSeenByAViewer(_ relay: RelayHandle) async throws -> [TestSocket] {
        let viewer = try await relay.viewer()
        var streamers: [TestSocket] = []
        for i in 0..<6 {
            let streamer = try await relay.streamer("cam-\(i)")
            streamer.send(TestFrames.text(i))
            streamers.append(streamer)
        }
        for i in 0..<6 { try await viewer.waitFor(type: "frame", stream: "cam-\(i)") }
        return streamers
    }

    @Test func aSignatureIsRefusedWhenAnythingDiffers() {
        let body = #"{"type": "stream_ended"}"#
        let header = WebhookSignature.sign(body: body, timestamp: 1_800_000_000, secret: Self.secret)
        #expect(header.hasPrefix("t=1800000000,v1=") && header.count == "t=1800000000,v1=".count + 64)
        #expect(WebhookSignature.verify(header: header, body: body, secret: Self.secret, now: 1_800_000_100))
        #expect(!WebhookSignature.verify(header: header, body: body + " ", secret: Self.secret, now: 1_800_000_100))
        #expect(!WebhookSignature.verify(header: header, body: body, secret: Self.secret, now: 1_800_000_301), "replayed too late")
        #expect(!WebhookSignature.verify(header: header.replacingOccurrences(of: "t=1800000000", with: "t=1800000001"), body: body,
                                         secret: Self.secret, now: 1_800_000_100))
        #expect(!WebhookSignature.verify(header: "v1=abc", body: body, secret: Self.secret, now: 1_800_000_000))
    }

    @Test func retriesWaitLongerEachTimeUpToTheCap() {
        let settings = WebhookSettings(urls: [], secret: [], firstRetryDelay: .milliseconds(500), maxRetryDelay: .seconds(3))
        #expect((1...5).map { settings.backoff.base(attempt: $0) } == [.milliseconds(500), .seconds(1), .seconds(2), .seconds(3), .seconds(3)])
        // Jitter stretches a wait by up to a quarter, never shortens it.
        #expect(settings.backoff.delay(attempt: 2, unit: 0) == .seconds(1))
        #expect(settings.backoff.delay(attempt: 2, unit: 0.999) < .milliseconds(1250))
        #expect(settings.backoff.delay(attempt: 9, unit: 0.5) == .milliseconds(3375))
    }
}
