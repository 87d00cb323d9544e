import Foundation
import NIOCore
@testable import Pipeline
@testable import RelayCore
@testable import RelayRules
import Testing

/// The rules of the streamer's side, as plain values on injected time: the
/// streamer's clock offset, the uplink's delayed verdict, and the demand a
/// streamer is told.
@Suite("Relay state: uplink and demand")
struct UplinkRuleTests {
    typealias T = ActionTranscript
    let t0 = ContinuousClock.now

    // MARK: The streamer's clock

    @Test func theOffsetComesFromTheShortestRoundTripAndPlacesCaptureTimesOnTheRelaysClock() {
        var clock = StreamerClock()
        #expect(clock.offset == nil)
        #expect(clock.captureTime(of: 1_000, receivedAt: 2_000) == nil, "no capture time before the offset is known")
        // The camera's clock is 10 s behind. A pong queued 400 ms behind frames, then a clean one.
        let answer1 = clock.record(serverSent: 100_000, clientTime: 90_300, serverReceived: 100_800)
        #expect(answer1)
        #expect(clock.offset == 10_100, "(S + R) / 2 − client: off by the queueing")
        let answer2 = clock.record(serverSent: 110_000, clientTime: 100_010, serverReceived: 110_020)
        #expect(answer2)
        #expect(clock.offset == 10_000)
        #expect(clock.roundTrip == 20)
        // A later, slower sample does not displace it.
        let answer3 = clock.record(serverSent: 120_000, clientTime: 110_500, serverReceived: 121_000)
        #expect(answer3)
        #expect(clock.offset == 10_000)
        #expect(clock.captureTime(of: 100_700, receivedAt: 111_000) == 110_700)
        // Never after the frame arrived: an estimate a few ms fast does not make a picture younger.
        #expect(clock.captureTime(of: 101_000, receivedAt: 110_990) == 110_990)
    }

    @Test func answersThatCannotBeToAPingAreIgnoredAndOldSamplesAreForgotten() {
        var clock = StreamerClock()
        let answer4 = clock.record(serverSent: 200_000, clientTime: 1, serverReceived: 199_000)
        #expect(!answer4, "a server time from the future")
        let answer5 = clock.record(serverSent: 100_000, clientTime: 1, serverReceived: 170_001)
        #expect(!answer5, "a round trip over a minute")
        #expect(clock.offset == nil)
        let answer6 = clock.record(serverSent: 0, clientTime: 0, serverReceived: 2)
        #expect(answer6)
        // Two minutes on, the camera's clock jumped by 5 s; the old best sample no longer counts.
        let answer7 = clock.record(serverSent: 130_000, clientTime: 125_000, serverReceived: 130_050)
        #expect(answer7)
        #expect(clock.offset == 5_025)
    }

    // MARK: The uplink's verdict

    static let rule = UplinkDelay.Rule(threshold: .seconds(1), hold: .seconds(2))

    @Test func anUplinkIsDelayedOnceItsDelayStaysOverTheThresholdAndOKOnceItStaysUnder() {
        var uplink = UplinkDelay()
        /// One frame `delay` ms late, `ms` after the start; the state it changes to, if it changes.
        func frame(_ delay: Int64, at ms: Int) -> String? {
            uplink.record(delay, at: t0 + .milliseconds(ms), wall: 1_800_000_000_000 + Int64(ms), rule: Self.rule)?.state
        }
        #expect(frame(300, at: 0) == nil)
        #expect(frame(1_500, at: 1_000) == nil, "over, not yet for long")
        #expect(frame(900, at: 1_500) == nil, "back under: the hold restarts")
        #expect(frame(1_200, at: 2_000) == nil)
        #expect(frame(2_500, at: 3_900) == nil)
        let delayed = uplink.record(3_000, at: t0 + .milliseconds(4_000), wall: 1_800_000_004_000, rule: Self.rule)
        #expect(delayed?.kind == "uplink")
        #expect(delayed?.state == "delayed")
        #expect(delayed?.since == Date(timeIntervalSince1970: 1_800_000_002), "since the delay went over")
        #expect(frame(3_100, at: 4_500) == nil, "the same state is no news")
        #expect(frame(200, at: 5_000) == nil)
        #expect(frame(150, at: 7_000) == "ok")
        #expect(uplink.last == 150)
        #expect(uplink.p95 == 3_100)
    }

    @Test func theStateTellsViewersOfADelayedUplinkFromTheFramesCaptureTimes() {
        var state = RelayState()
        _ = state.addViewer(.init(format: .json, remoteAddress: "a"))
        _ = state.connectStream("P-1", session: T.session(1), now: t0)
        func frame(_ seq: UInt64, delay: Int64, at ms: Int) -> Frame {
            var frame = Frame(streamID: "P-1", seq: seq, arrival: t0 + .milliseconds(ms), receivedAt: 1_800_000_000_000 + Int64(ms),
                              payload: .binary(ByteBuffer(bytes: [0xFF, 0xD8, 0xFF, 0xD9])))
            frame.capturedAt = frame.receivedAt - delay
            return frame
        }
        _ = state.frameAccepted(frame(0, delay: 2_000, at: 0))
        _ = state.frameAccepted(frame(1, delay: 2_000, at: 1_000))
        let lines = T.lines(state.frameAccepted(frame(2, delay: 2_400, at: 2_000)), events: true)
        #expect(lines.contains("v-1 ← stream_health P-1 uplink delayed"), "\(lines)")
        #expect(lines.contains("event: stream_health P-1 uplink delayed"))
        #expect(state.streamSnapshots(scope: .all).first?.ingestDelayP95 == 2_400)
        #expect(state.streamSnapshots(scope: .all).first?.health["uplink"]?.state == "delayed")
    }

    // MARK: Demand

    @Test func aStreamerIsToldWhoWatchesAndTheLargestPictureAndRateTheyAreSent() {
        var state = RelayState()
        let (_, connected) = state.connectStream("P-1", session: T.session(1), now: t0)
        #expect(T.lines(connected, demand: true).contains("session 1 ← demand unwatched"), "told at once")
        _ = state.frameAccepted(RelayStateRenditionTests.frame("P-1", seq: 0, rungs: [1, 2, 3]))
        let (_, joined) = state.addViewer(.init(format: .binary, remoteAddress: "a"))
        #expect(T.lines(joined, demand: true).last == "session 1 ← demand watched any size, every frame")
        // Its tile is 300 px wide: the 1/4 rung (320×180) is the smallest that covers it.
        let sized = T.lines(state.setView("v-1", stream: "P-1", StreamView(width: 300, height: 169), now: t0), demand: true)
        #expect(sized.last == "session 1 ← demand watched 320x180, every frame")
        // A second viewer with a larger tile: the largest one counts.
        _ = state.addViewer(.init(format: .binary, remoteAddress: "b"))
        #expect(T.lines(state.setView("v-2", stream: "P-1", StreamView(width: 600, height: 338), now: t0), demand: true).last
            == "session 1 ← demand watched 640x360, every frame")
        // Nothing changed, nothing told.
        #expect(T.lines(state.demandUpdates(), demand: true).isEmpty)
        // Both hidden: nobody watches.
        _ = state.setView("v-1", stream: "P-1", StreamView(width: 300, height: 169, visible: false), now: t0)
        #expect(T.lines(state.setView("v-2", stream: "P-1", StreamView(visible: false), now: t0), demand: true).last
            == "session 1 ← demand unwatched")
    }

    @Test func aReplacingStreamerIsToldAfresh() {
        var state = RelayState()
        _ = state.connectStream("P-1", session: T.session(1), now: t0)
        let (_, replaced) = state.connectStream("P-1", session: T.session(2), now: t0)
        #expect(T.lines(replaced, demand: true).contains("session 2 ← demand unwatched"))
    }

    @Test func inAClusterACameraHearsEveryNodesViewersMergedAndWhatANodeStopsRepeatingIsForgotten() {
        var state = RelayState()
        _ = state.connectStream("P-1", session: T.session(1), now: t0)
        _ = state.frameAccepted(RelayStateRenditionTests.frame("P-1", seq: 0, rungs: [1, 2, 3]))
        // Nobody here watches; node B's viewers want 320×180, then node C's any size at 5 fps.
        #expect(T.lines(state.demandElsewhere("P-1", by: "node-b", StreamDemand(watched: true, width: 320, height: 180, fps: nil), now: t0),
                        demand: true) == ["session 1 ← demand watched 320x180, every frame"])
        #expect(T.lines(state.demandElsewhere("P-1", by: "node-c", StreamDemand(watched: true, width: nil, height: nil, fps: 5), now: t0 + .seconds(10)),
                        demand: true) == ["session 1 ← demand watched any size, every frame"])
        // B stops repeating it (gone, or its message lost): forgotten after 15 s; C's still holds.
        #expect(T.lines(state.expireDemandElsewhere(now: t0 + .seconds(16)), demand: true) == ["session 1 ← demand watched any size, @5.0fps"])
        #expect(T.lines(state.expireDemandElsewhere(now: t0 + .seconds(26)), demand: true) == ["session 1 ← demand unwatched"])
        // A viewer here and one there: the larger picture.
        _ = state.addViewer(.init(format: .binary, remoteAddress: "a"))
        _ = state.setView("v-1", stream: "P-1", StreamView(width: 300, height: 169), now: t0)
        #expect(T.lines(state.demandElsewhere("P-1", by: "node-b", StreamDemand(watched: true, width: 640, height: 360, fps: nil), now: t0 + .seconds(30)),
                        demand: true) == ["session 1 ← demand watched 640x360, every frame"])
    }

    @Test func whileSomeNodeDoesNotCountItsViewersACameraIsToldToSendEverything() {
        var state = RelayState()
        _ = state.allNodesTellDemand(false)
        let (_, connected) = state.connectStream("P-1", session: T.session(1), now: t0)
        #expect(T.lines(connected, demand: true).contains("session 1 ← demand watched any size, every frame"),
                "an older node's viewers are not counted here: the camera keeps sending everything")
        #expect(T.lines(state.allNodesTellDemand(true), demand: true) == ["session 1 ← demand unwatched"])
    }

    @Test func aNodeTellsTheOwnerWhatItsViewersNeedOfAnotherNodesStream() {
        var state = RelayState()
        _ = state.remoteStarted("P-9", by: "node-a", at: ActionTranscript.wall)
        let (_, joined) = state.addViewer(.init(format: .binary, remoteAddress: "a"))
        #expect(T.lines(joined, demand: true).contains("cluster: P-9 demand watched any size, every frame"))
        #expect(T.lines(state.setView("v-1", stream: "P-9", StreamView(visible: false), now: t0), demand: true).last
            == "cluster: P-9 demand unwatched")
        #expect(state.demandForOtherNodes().isEmpty, "an unwatched stream is not repeated")
    }
}
