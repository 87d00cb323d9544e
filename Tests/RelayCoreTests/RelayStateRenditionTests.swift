import Foundation
import NIOCore
@testable import Pipeline
@testable import RelayCore
@testable import RelayRules
import Testing
@testable import WireProtocol

/// Which picture a viewer gets of each stream: `view` hints (visibility,
/// drawn size), the viewer's own preference, and the delivery policy, as
/// events on a `RelayState` and the deliveries they produce.
@Suite("Relay state: renditions and views")
struct RelayStateRenditionTests {
    typealias T = ActionTranscript
    let t0 = ContinuousClock.now
    static let ladder = RenditionLadder(steps: [
        RenditionStep(numerator: 1, denominator: 2, quality: 60),
        RenditionStep(numerator: 3, denominator: 8, quality: 55),
        RenditionStep(numerator: 1, denominator: 4, quality: 50),
    ])

    /// A 1280×720 frame of `bytes` whose pipeline declared `ladder` and made `rungs`.
    static func frame(_ stream: String, seq: UInt64, ladder: RenditionLadder = ladder, rungs: [Int] = [], bytes: Int = 40_000) -> Frame {
        var frame = Frame(streamID: stream, seq: seq, arrival: .now, payload: .binary(ByteBuffer(repeating: 0xAB, count: bytes)))
        frame.header = JPEGHeader(width: 1280, height: 720, subsampling: "4:2:0")
        frame.ladder = ladder
        for rung in rungs {
            let step = ladder.steps[rung - 1]
            frame.renditions.append(Rendition(jpeg: ByteBuffer(repeating: 1, count: Int(Double(bytes) * step.factor * step.factor)),
                                              width: step.scaled(1280), height: step.scaled(720), rung: rung))
        }
        return frame
    }

    /// One live stream P-1 at 30 fps with a known ladder, and `viewers` viewers.
    func live(viewers: [ViewerRecord.Wants]) -> RelayState {
        var state = RelayState()
        _ = state.connectStream("P-1", session: T.session(1), now: t0)
        for (i, wants) in viewers.enumerated() {
            _ = state.addViewer(wants)
            _ = i
        }
        for seq in 0..<30 { _ = state.frameAccepted(Self.frame("P-1", seq: UInt64(seq), rungs: [1, 2, 3])) }
        _ = state.sample(elapsed: .seconds(1), windows: [:], slowLossRatio: 0.2, now: t0)
        return state
    }

    func deliveries(_ state: inout RelayState, seq: UInt64) -> [String] {
        T.lines(state.frameAccepted(Self.frame("P-1", seq: seq, rungs: [1, 2, 3]))).filter { $0.hasPrefix("deliver") }
    }

    /// A frame's fan-out comes in groups of viewers sent the same bytes at
    /// the same pace (format, rendition, `patient_id` naming, frame-rate
    /// cap): the frame path encodes once per group and, per viewer, only offers.
    @Test func aFramesViewersAreGroupedByWhatTheyAreSent() throws {
        var state = live(viewers: [
            .init(format: .binary, remoteAddress: "a"), .init(format: .binary, remoteAddress: "b"),
            .init(format: .json, remoteAddress: "c"), .init(format: .binary, quality: .low, remoteAddress: "d"),
            .init(format: .binary, remoteAddress: "e", namesPatient: true), .init(format: .json, remoteAddress: "f"),
        ])
        let actions = state.frameAccepted(Self.frame("P-1", seq: 100, rungs: [1, 2, 3]))
        guard case .deliver(_, let fanOut, _)? = actions.first(where: { if case .deliver = $0 { true } else { false } }) else {
            Issue.record("no delivery"); return
        }
        let groups = fanOut.groups.map { group in
            "\(group.format.rawValue) \(group.rendition.description)\(group.namingPatient ? " patient_id" : ""): "
                + group.targets.map(\.viewer).sorted().joined(separator: ",")
        }.sorted()
        #expect(groups == ["binary full patient_id: v-5", "binary full: v-1,v-2", "binary low: v-4", "json full: v-3,v-6"], "\(groups)")
        #expect(fanOut.targets.count == 6)
    }

    @Test func aNewViewerGetsEachLiveStreamsLatestFrameRightAfterViewerConnected() throws {
        var state = live(viewers: [])
        _ = state.connectStream("P-2", session: T.session(2), now: t0)
        _ = state.frameAccepted(Self.frame("P-2", seq: 7))
        let (_, actions) = state.addViewer(.init(format: .binary, remoteAddress: "a"))
        #expect(Array(T.lines(actions).prefix(3)) == ["v-1 ← viewer_connected [P-1,P-2]", "deliver P-1#29 → v-1:full", "deliver P-2#7 → v-1:full"])
        let tickets = actions.compactMap { if case .deliver(_, _, let ticket) = $0 { ticket } else { nil } }
        #expect(tickets.map(\.replayOf) == [29, 7], "replays: sent as cached, and only while still the latest")
    }

    @Test func aHiddenTileGetsNoFramesAndTheLatestOneTheMomentItIsVisibleAgain() throws {
        var state = live(viewers: [.init(format: .binary, remoteAddress: "a"), .init(format: .binary, remoteAddress: "b")])
        #expect(T.lines(state.setView("v-1", stream: "P-1", StreamView(visible: false), now: t0)).isEmpty)
        #expect(deliveries(&state, seq: 30) == ["deliver P-1#30 → v-2:full"], "control messages still flow; frames do not")
        let shown = state.setView("v-1", stream: "P-1", StreamView(visible: true), now: t0)
        #expect(T.lines(shown) == ["deliver P-1#30 → v-1:full"], "the newest frame at once, not after the next one")
        guard case .deliver(_, _, let ticket)? = shown.last else { Issue.record("no delivery"); return }
        #expect(ticket.replayOf == 30)
        #expect(state.streamHolding(of: "P-1")?.admits(ticket) == true)
        #expect(deliveries(&state, seq: 31) == ["deliver P-1#31 → v-1:full,v-2:full"])
        #expect(state.streamHolding(of: "P-1")?.admits(ticket) != true, "once a newer frame is accepted the replay is not offered: it could overtake it")
        #expect(T.lines(state.setView("v-1", stream: "P-1", StreamView(visible: true), now: t0)).isEmpty, "the same view again changes nothing")
    }

    /// Rows: a tile's drawn width in device pixels, and the rung it is sent
    /// of a 1280×720 stream with steps 1/2 (640), 3/8 (480), 1/4 (320).
    @Test func aTileGetsTheSmallestRenditionAtLeastAsWideAsItIsDrawn() {
        var state = live(viewers: [.init(format: .binary, remoteAddress: "a")])
        let rows: [(width: Int, sent: String)] = [
            (1400, "full"), (641, "full"), (640, "low"), (481, "low"), (480, "low2"), (330, "low2"), (320, "low3"), (100, "low3"),
        ]
        for (number, row) in rows.enumerated() {
            _ = state.setView("v-1", stream: "P-1", StreamView(width: row.width, height: row.width * 9 / 16), now: t0)
            #expect(deliveries(&state, seq: UInt64(40 + number)) == ["deliver P-1#\(40 + number) → v-1:\(row.sent)"], "width \(row.width)")
            #expect(state.wantedRenditions(streamID: "P-1", ladder: Self.ladder) == RenditionSet([RenditionKind(rung: ["full": 0, "low": 1, "low2": 2, "low3": 3][row.sent]!).rung]),
                    "only the rung being sent is made")
        }
    }

    @Test func sizesAreChosenPerStreamAndThePreferenceOfTheViewerAlwaysWins() {
        var state = live(viewers: [
            .init(format: .binary, quality: .full, remoteAddress: "a"),
            .init(format: .binary, quality: .low, remoteAddress: "b"),
            .init(format: .binary, remoteAddress: "c"),
        ])
        _ = state.connectStream("P-2", session: T.session(2), now: t0)
        _ = state.frameAccepted(Self.frame("P-2", seq: 0, rungs: [1]))
        for viewer in ["v-1", "v-2", "v-3"] {
            _ = state.setView(viewer, stream: "P-1", StreamView(width: 200, height: 112), now: t0)
            _ = state.setView(viewer, stream: "P-2", StreamView(width: 1920, height: 1080), now: t0)
        }
        #expect(deliveries(&state, seq: 50) == ["deliver P-1#50 → v-1:full,v-2:low3,v-3:low3"], "full is never sent smaller")
        #expect(T.lines(state.frameAccepted(Self.frame("P-2", seq: 1, rungs: [1]))).filter { $0.hasPrefix("deliver") }
                == ["deliver P-2#1 → v-1:full,v-2:low,v-3:full"], "a tile opened large gets full for that stream only; low never full")
    }

    @Test func aPipelineThatAlwaysDownscalesSendsFullOnlyToViewersWhoAskForIt() {
        let always = RenditionLadder(steps: [RenditionStep(numerator: 1, denominator: 4, quality: 50)], fullForAuto: false)
        var state = RelayState()
        _ = state.connectStream("P-1", session: T.session(1), now: t0)
        _ = state.addViewer(.init(format: .binary, remoteAddress: "a"))
        _ = state.addViewer(.init(format: .binary, quality: .full, remoteAddress: "b"))
        _ = state.frameAccepted(Self.frame("P-1", seq: 0, ladder: always, rungs: [1]))
        #expect(T.lines(state.frameAccepted(Self.frame("P-1", seq: 1, ladder: always, rungs: [1]))).filter { $0.hasPrefix("deliver") }
                == ["deliver P-1#1 → v-1:low,v-2:full"])
    }

    /// A link that falls behind steps the viewer down until what it is sent
    /// fits its goodput; calm seconds later it tries one step up again.
    @Test func aCongestedLinkStepsDownAndACalmOneStepsBackUp() throws {
        var state = live(viewers: [.init(format: .binary, remoteAddress: "a")])
        // 30 fps × 40 KB = 1.2 MB/s at full; the link carries 200 KB/s.
        let slowLink = LinkFigures(goodput: 200_000, linkLimited: true, rtt: .milliseconds(50), unsentBytes: 60_000)
        var seq: UInt64 = 100
        func aSecondOfFrames() {
            for _ in 0..<30 { seq += 1; _ = state.frameAccepted(Self.frame("P-1", seq: seq, rungs: [1, 2, 3])) }
        }
        aSecondOfFrames()
        let congested = state.sample(elapsed: .seconds(1), windows: ["v-1": .init(offered: 30, replaced: 20)], slowLossRatio: 0.2,
                                     links: ["v-1": slowLink], now: t0 + .seconds(1))
        // 200 KB/s ÷ 1.25 = 160 KB/s: 1/4 (2.5 KB × 30 = 75 KB/s) fits, 3/8 (5.6 KB × 30 = 169 KB/s) does not.
        #expect(congested.renditionChanges.map { [$0.viewer, $0.stream, $0.from, $0.to] } == [["v-1", "P-1", "full", "1/4"]])
        // The change carries what the policy was shown, for the log line that reports it.
        let why = try #require(congested.renditionChanges.first?.logMetadata)
        #expect(why["frames_offered"] != nil && why["frames_replaced"] != nil && why["reader_limited"] == "false", "\(why)")
        let calmLink = LinkFigures(goodput: 80_000, linkLimited: false, rtt: .milliseconds(50), unsentBytes: 0)
        var changes: [String] = []
        for second in 2...22 {
            aSecondOfFrames()
            let sample = state.sample(elapsed: .seconds(1), windows: ["v-1": .init(offered: 30, replaced: 0)], slowLossRatio: 0.2,
                                      links: ["v-1": calmLink], now: t0 + .seconds(second))
            changes += sample.renditionChanges.map { "\(second)s: \($0.from) → \($0.to)" }
        }
        // Every 2 calm seconds (stepUpAfter) the budget grows, 1.25× first, then 1.5625×, 1.95×, 2×:
        // 200 KB/s (3/8 fits), 312 KB/s (1/2), 610 KB/s, then past full's 1.2 MB/s.
        #expect(changes == ["3s: 1/4 → 3/8", "5s: 3/8 → 1/2", "9s: 1/2 → full"])
    }

    /// A link that cannot carry even the smallest rung at the stream's rate
    /// is sent fewer frames, each the newest, rather than a queue of them.
    @Test func aLinkTooSlowForTheSmallestRungGetsFewerFramesNotOlderOnes() {
        var state = live(viewers: [.init(format: .binary, remoteAddress: "a")])
        for seq in 100..<130 { _ = state.frameAccepted(Self.frame("P-1", seq: UInt64(seq), rungs: [1, 2, 3])) }
        // The 1/4 rung costs 2.5 KB × 30 fps = 75 KB/s; the link carries 25 KB/s, ÷ 1.25 = 20 KB/s: 8 fps.
        let tooSlow = LinkFigures(goodput: 25_000, linkLimited: true, rtt: .milliseconds(80), unsentBytes: 30_000)
        _ = state.sample(elapsed: .seconds(1), windows: ["v-1": .init(offered: 30, replaced: 25)], slowLossRatio: 0.2,
                         links: ["v-1": tooSlow], now: t0 + .seconds(1))
        #expect(deliveries(&state, seq: 200) == ["deliver P-1#200 → v-1:low3@8.0fps"])
        #expect(state.viewSnapshots(of: state.viewers["v-1"]!).first?.maxFPS == 8)
    }

    /// An MJPEG client's `?width=` and `?fps=`: the smallest rung at least
    /// that wide, and at most that many frames a second (the lower of that
    /// and any cap of the policy's own).
    @Test func aViewersAskedSizeAndFrameRateShapeWhatItIsSent() {
        var state = live(viewers: [.init(format: .mjpeg, streams: ["P-1"], remoteAddress: "a")])
        #expect(deliveries(&state, seq: 100) == ["deliver P-1#100 → v-1:full"])
        _ = state.setView("v-1", stream: "P-1", StreamView(width: 600, maxFPS: 5), now: t0 + .seconds(1))
        // 1/2 is 640 wide, 3/8 is 480: the smallest at least 600 wide is 1/2.
        #expect(deliveries(&state, seq: 101) == ["deliver P-1#101 → v-1:low@5.0fps"])
        _ = state.setView("v-1", stream: "P-1", StreamView(width: 300), now: t0 + .seconds(2))
        #expect(deliveries(&state, seq: 102) == ["deliver P-1#102 → v-1:low3"], "1/4 is 320 wide; no cap asked")
    }
}

