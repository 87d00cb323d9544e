import Foundation
@testable import Pipeline
@testable import RelayCore
@testable import RelayRules
import Testing
@testable import WireProtocol

/// The relay's rules, as events fed to a `RelayState` and the actions it
/// returns: no sockets, no locks, time passed in by the test.
@Suite("Relay state")
struct RelayStateTests {
    typealias T = ActionTranscript
    let t0 = ContinuousClock.now

    @Test func aStreamIsAnnouncedWithItsFirstFrameAndEndedToItsViewers() throws {
        var state = RelayState()
        #expect(T.lines(state.addViewer(.init(format: .json, remoteAddress: "a")).1) == [
            "v-1 ← viewer_connected []", "metric: viewer", "cluster: interest"])
        let session = T.session(1)
        #expect(T.lines(state.connectStream("P-1", session: session, now: t0).1) == ["cluster: connected P-1"],
                "a connected stream is not announced until a frame passes the pipeline")
        #expect(state.streamActivity("P-1", isFrame: true, now: t0) == 0)
        #expect(T.lines(state.frameAccepted(T.frame("P-1", seq: 0)), logs: true) == [
            "v-1 ← stream_started P-1", "log info: stream started", "metric: frame P-1",
            "deliver P-1#0 → v-1:full", "cluster: started P-1", "cluster: frame P-1#0"])
        #expect(T.lines(state.frameAccepted(T.frame("P-1", seq: 1))) == ["metric: frame P-1", "deliver P-1#1 → v-1:full", "cluster: frame P-1#1"])
        // A second viewer hears of the live stream in its first message.
        #expect(T.lines(state.addViewer(.init(format: .binary, remoteAddress: "b")).1).first == "v-2 ← viewer_connected [P-1]")
        #expect(T.lines(state.endStream("P-1", session: session, reason: .closed), logs: true) == [
            "v-1 ← stream_ended P-1 closed", "v-2 ← stream_ended P-1 closed",
            "cluster: ended P-1 closed", "metric: ended P-1", "log info: stream ended"])
        #expect(state.streams.isEmpty)
    }

    @Test func aStreamThatNeverStartedEndsWithoutTellingViewers() {
        var state = RelayState()
        _ = state.addViewer(.init(format: .json, remoteAddress: "a"))
        let session = T.session(1)
        _ = state.connectStream("P-1", session: session, now: t0)
        #expect(T.lines(state.endStream("P-1", session: session, reason: .timeout)) == ["cluster: ended P-1 timeout", "metric: ended P-1"])
    }

    @Test func seqContinuesAcrossAReplacementAndTheOldConnectionsEndIsIgnored() throws {
        var state = RelayState()
        let first = T.session(1), second = T.session(2)
        _ = state.connectStream("P-1", session: first, now: t0)
        for expected in 0..<3 as Range<UInt64> {
            #expect(state.streamActivity("P-1", isFrame: true, now: t0) == expected)
        }
        #expect(state.streamActivity("P-1", isFrame: false, now: t0) == 3, "a control message takes no seq")
        let ticket = FrameTicket(stream: "P-1", holder: .session(first.id))
        #expect(state.streamHolding(of: "P-1")?.admits(ticket) == true)
        let (connected, actions) = state.connectStream("P-1", session: second, now: t0)
        #expect(connected?.replaced === first)
        #expect(connected?.firstSeq == 3)
        #expect(T.lines(actions) == ["cluster: connected P-1"])
        #expect(state.streamHolding(of: "P-1")?.admits(ticket) != true, "a frame the old connection had in flight is not offered")
        #expect(state.endStream("P-1", session: first, reason: .closed).isEmpty)
        #expect(state.streams["P-1"]?.session === second)
    }

    /// Each row: which node serves the stream, the seq that node gives a
    /// frame, and the seq viewers here get (nil: not admitted). Seq may
    /// skip ahead at a move (a gap is harmless), never go back.
    @Test func seqNeverGoesBackwardsWhenTheStreamMovesBetweenNodes() throws {
        var state = RelayState()
        _ = state.addViewer(.init(format: .json, remoteAddress: "a"))
        let rows: [(claim: String?, from: String, seq: UInt64, admitted: UInt64?)] = [
            ("node-a", "node-a", 40, 40),
            (nil, "node-a", 41, 41),
            (nil, "node-b", 0, nil),     // node B does not serve it yet
            ("node-b", "node-a", 42, nil),  // node A no longer does
            (nil, "node-b", 0, 42),
            (nil, "node-b", 1, 43),
            ("node-a", "node-a", 7, 49),  // back to A: the offset may skip ahead, never back
            (nil, "node-a", 8, 50),
        ]
        for row in rows {
            if let node = row.claim { _ = state.remoteClaimed("P-1", by: node, started: true, at: ActionTranscript.wall) }
            #expect(state.admitRemoteFrame("P-1", from: row.from, seq: row.seq) == row.admitted, "\(row)")
        }
        // Then to this node: local frames continue after the last one viewers had.
        let (connected, actions) = state.connectStream("P-1", session: T.session(1), now: t0)
        #expect(connected?.firstSeq == 51)
        #expect(T.lines(actions, logs: true) == [
            "log info: stream taken over from another node", "cluster: connected P-1 started", "cluster: interest"])
    }

    /// The owner's latest frame sent again (a replay, asked for when this
    /// node starts listening) can overtake the same frame sent live: the
    /// live one is then not shown again under the next seq, which would have
    /// made the owner's next frame look like one viewers already had.
    @Test func aLiveFrameAReplayOvertookIsDroppedNotShownUnderTheNextSeq() {
        var state = RelayState()
        _ = state.addViewer(.init(format: .json, remoteAddress: "a"))
        _ = state.remoteClaimed("P-1", by: "node-a", started: true, at: ActionTranscript.wall)
        #expect(state.admitRemoteFrame("P-1", from: "node-a", seq: 0) == 0)
        #expect(state.admitRemoteFrame("P-1", from: "node-a", seq: 1, replay: true) == 1)
        #expect(state.admitRemoteFrame("P-1", from: "node-a", seq: 1) == nil, "already shown as the replay")
        #expect(state.admitRemoteFrame("P-1", from: "node-a", seq: 2) == 2)
        // The camera reconnects to its node, whose seq goes on; a claim by a node whose seq starts again is mapped above.
        _ = state.remoteClaimed("P-1", by: "node-a", started: true, at: ActionTranscript.wall)
        #expect(state.admitRemoteFrame("P-1", from: "node-a", seq: 0) == 3)
    }

    @Test func aLostNodesStreamEndsAsNodeLostAndALateEndFromAnotherNodeIsIgnored() {
        var state = RelayState()
        _ = state.addViewer(.init(format: .json, remoteAddress: "a"))
        #expect(T.lines(state.remoteClaimed("P-1", by: "node-a", started: false, at: ActionTranscript.wall)) == ["cluster: interest"])
        #expect(T.lines(state.remoteStarted("P-1", by: "node-a", at: ActionTranscript.wall)) == ["v-1 ← stream_started P-1", "cluster: interest"])
        #expect(state.remoteStarted("P-1", by: "node-a", at: ActionTranscript.wall).isEmpty, "announced once")
        _ = state.remoteClaimed("P-2", by: "node-b", started: true, at: ActionTranscript.wall)
        #expect(state.remoteStreamsByOwner() == ["node-a": ["P-1"], "node-b": ["P-2"]])
        #expect(state.remoteEnded("P-1", by: "node-b", reason: .closed).isEmpty, "not its owner")
        #expect(T.lines(state.remoteEnded("P-1", by: "node-a", reason: .nodeLost), logs: true) == [
            "v-1 ← stream_ended P-1 node_lost", "metric: ended P-1", "log warning: stream ended on another node", "cluster: interest"])
        #expect(state.remoteStreamsByOwner() == ["node-b": ["P-2"]])
    }

    @Test func aStreamClaimedByAnotherNodeClosesTheStreamerHereWithoutAnEnd() {
        var state = RelayState()
        _ = state.addViewer(.init(format: .json, remoteAddress: "a"))
        let session = T.session(1)
        _ = state.connectStream("P-1", session: session, now: t0)
        _ = state.frameAccepted(T.frame("P-1", seq: 0))
        #expect(T.lines(state.remoteClaimed("P-1", by: "node-b", started: true, at: ActionTranscript.wall)) == ["close session 1 replaced", "cluster: interest"])
        #expect(state.endStream("P-1", session: session, reason: .replaced).isEmpty, "the streamer's own end says nothing")
        #expect(state.streams["P-1"]?.owner == "node-b")
    }

    /// After Redis comes back: a stream that ended meanwhile on a live node
    /// ends here; one whose node is not back is kept for the liveness check;
    /// a new one appears; a local stream another node claimed is replaced.
    @Test func resyncAfterAnOutageAlignsWithTheRegistry() {
        var state = RelayState()
        _ = state.addViewer(.init(format: .json, remoteAddress: "a"))
        _ = state.remoteClaimed("ended-meanwhile", by: "node-a", started: true, at: ActionTranscript.wall)
        _ = state.remoteClaimed("node-not-back", by: "node-c", started: true, at: ActionTranscript.wall)
        _ = state.connectStream("moved-away", session: T.session(1), now: t0)
        _ = state.frameAccepted(T.frame("moved-away", seq: 0))
        _ = state.connectStream("still-mine", session: T.session(2), now: t0)
        let (mine, actions) = state.resync(registry: [
            "new-stream": ("node-a", true),
            "moved-away": ("node-b", true),
            "still-mine": ("node-me", false),
        ], liveNodes: ["node-a", "node-b"], me: "node-me", at: ActionTranscript.wall)
        #expect(mine.map(\.id) == ["still-mine"])
        #expect(T.lines(actions) == [
            "v-1 ← stream_ended ended-meanwhile closed", "metric: ended ended-meanwhile",
            "close session 1 replaced",
            "v-1 ← stream_started new-stream",
            "cluster: interest"])
        #expect(state.remoteStreamsByOwner().mapValues { $0.sorted() } == [
            "node-a": ["new-stream"], "node-b": ["moved-away"], "node-c": ["node-not-back"]])
    }

    @Test func anOutageLongerThanTheNodeTimeoutEndsEveryRemoteStreamHere() {
        var state = RelayState()
        _ = state.addViewer(.init(format: .json, remoteAddress: "a"))
        _ = state.remoteClaimed("A", by: "node-a", started: true, at: ActionTranscript.wall)
        _ = state.remoteClaimed("B", by: "node-b", started: false, at: ActionTranscript.wall)
        _ = state.connectStream("mine", session: T.session(1), now: t0)
        let (ended, actions) = state.endRemoteStreams(reason: .nodeLost)
        #expect(ended == ["A", "B"])
        #expect(T.lines(actions) == ["v-1 ← stream_ended A node_lost", "metric: ended A", "metric: ended B"])
        #expect(state.localStreams().map(\.id) == ["mine"])
    }

    @Test func aViewerSeesOnlyWhatItsScopeAndListCover() {
        var state = RelayState()
        for id in ["P-1", "P-2", "W-1"] {
            _ = state.connectStream(id, session: T.session(UInt64(id.hashValue.magnitude % 1000)), now: t0)
            _ = state.frameAccepted(T.frame(id, seq: 0))
        }
        let (_, joined) = state.addViewer(.init(format: .json, scope: StreamScope(["P-*"]), remoteAddress: "a"))
        #expect(T.lines(joined).first == "v-1 ← viewer_connected [P-1,P-2]")
        _ = state.addViewer(.init(format: .json, streams: ["W-1"], remoteAddress: "b"))
        #expect(T.lines(state.frameAccepted(T.frame("P-2", seq: 1))).contains("deliver P-2#1 → v-1:full"))
        #expect(T.lines(state.frameAccepted(T.frame("W-1", seq: 1))).contains("deliver W-1#1 → v-2:full"))
        // Subscribing announces only live streams newly covered, and never one outside the scope.
        #expect(T.lines(state.subscribe("v-1", to: ["P-2", "W-1"])) == ["cluster: interest"])
        #expect(T.lines(state.subscribe("v-1", to: nil)) == ["v-1 ← stream_started P-1", "deliver P-1#0 → v-1:full", "cluster: interest"],
                "and its latest frame, so the new tile is not blank")
        state.narrowScope("v-1", to: StreamScope(["P-1"]))
        #expect(T.lines(state.frameAccepted(T.frame("P-2", seq: 2))).contains("deliver P-2#2 → "), "after narrowing, P-2 goes to no one")
        #expect(state.streamSnapshots(scope: StreamScope(["W-*"])).map(\.id) == ["W-1"])
    }

    /// Each row: a measuring window's offered and replaced frames, and
    /// whether the viewer is slow after it (what `/api/viewers` and the log
    /// say; the rendition it gets is its delivery policy's to pick).
    @Test func aViewerBecomesSlowAfterOneBadWindowAndFastAfterThreeGoodOnes() {
        var state = RelayState()
        _ = state.connectStream("P-1", session: T.session(1), now: t0)
        _ = state.frameAccepted(T.frame("P-1", seq: 0))
        _ = state.addViewer(.init(format: .binary, quality: .auto, remoteAddress: "a"))
        let rows: [(offered: Int, replaced: Int, slow: Bool, changed: Bool)] = [
            (30, 3, false, false),   // 10 % lost: under the 20 % line
            (5, 5, false, false),    // too few frames to judge
            (30, 9, true, true),     // 30 %: slow
            (30, 0, true, false),    // good 1
            (30, 1, true, false),    // good 2
            (30, 6, true, false),    // 20 %: not good, the count restarts
            (30, 0, true, false), (30, 0, true, false),
            (30, 0, false, true),    // the third good window in a row
        ]
        for (number, row) in rows.enumerated() {
            let windows: [String: LossWindow] = ["v-1": .init(offered: row.offered, replaced: row.replaced)]
            let sample = state.sample(elapsed: .seconds(1), windows: windows, slowLossRatio: 0.2, now: t0 + .seconds(number))
            #expect(state.viewers["v-1"]?.slowness.slow == row.slow, "row \(number)")
            #expect(sample.slowChanges.contains { $0.id == "v-1" } == row.changed, "row \(number)")
        }
    }

    @Test func anIdleStreamIsWarnedOnceThenClosedAndActivityStartsItsSilenceAgain() {
        var state = RelayState()
        let session = T.session(1)
        _ = state.connectStream("P-1", session: session, now: t0)
        _ = state.remoteClaimed("R-1", by: "node-b", started: true, at: ActionTranscript.wall)
        let rows: [(at: Duration, activity: Bool, idle: [String])] = [
            (.seconds(4), false, []),
            (.seconds(5), false, ["warn 5s"]),
            (.seconds(7), false, []),  // warned once per silence
            (.seconds(8), true, []),
            (.seconds(13), false, ["warn 5s"]),
            (.seconds(18), false, ["close 10s"]),
        ]
        for row in rows {
            if row.activity { _ = state.streamActivity("P-1", isFrame: false, now: t0 + row.at) }
            let idle = state.idleStreams(now: t0 + row.at, warnAfter: .seconds(5), closeAfter: .seconds(10)).idle
            #expect(idle.map { "\($0.timedOut ? "close" : "warn") \($0.idle.components.seconds)s" } == row.idle, "at \(row.at)")
            #expect(idle.allSatisfy { $0.id == "P-1" && $0.session === session }, "another node's stream is that node's to time out")
        }
    }

    @Test func viewersAreListedInTheOrderTheyConnected() {
        var state = RelayState()
        for _ in 1...12 { _ = state.addViewer(.init(format: .json, remoteAddress: "a")) }
        _ = state.removeViewer("v-3", reason: .closed)
        #expect(state.viewerIDs() == ["v-1", "v-2"] + (4...12).map { "v-\($0)" })
        #expect(state.viewerIDs { $0.number.isMultiple(of: 5) } == ["v-5", "v-10"])
    }

    @Test func aViewerIsPingedOnceUntilItAnswers() {
        var state = RelayState()
        _ = state.addViewer(.init(format: .json, remoteAddress: "a"))
        _ = state.addViewer(.init(format: .json, remoteAddress: "b"))
        let first = state.pingViewers(now: t0)
        #expect(T.lines(first) == ["v-1 ← ping", "v-2 ← ping"])
        guard case .control(_, let text)? = first.first else { Issue.record("no ping"); return }
        #expect(text == #"{"type":"ping"}"#, "unchanged: clients compare it as a string")
        state.pongReceived("v-2")
        #expect(T.lines(state.pingViewers(now: t0 + .seconds(5))) == ["v-2 ← ping"])
        #expect(state.viewersWithUnansweredPing(olderThan: .seconds(10), now: t0 + .seconds(9)).isEmpty)
        #expect(state.viewersWithUnansweredPing(olderThan: .seconds(10), now: t0 + .seconds(10)) == ["v-1"])
        #expect(T.lines(state.removeViewer("v-1", reason: .pingTimeout)) == ["left v-1 ping_timeout, 1 remain", "cluster: interest"])
        #expect(state.removeViewer("v-1", reason: .closed).isEmpty, "removed once")
    }

    /// Viewers hear every started stream end with `shutdown` before their
    /// mailboxes are finished; the streamers are closed after; nothing new
    /// is let in.
    @Test func shutdownEndsStreamsForViewersThenFinishesThemThenClosesStreamers() {
        var state = RelayState()
        _ = state.addViewer(.init(format: .json, remoteAddress: "a"))
        _ = state.addViewer(.init(format: .json, streams: ["P-2"], remoteAddress: "b"))
        for (number, id) in ["P-1", "P-2"].enumerated() {
            _ = state.connectStream(id, session: T.session(UInt64(number + 1)), now: t0)
            _ = state.frameAccepted(T.frame(id, seq: 0))
        }
        _ = state.connectStream("P-3", session: T.session(3), now: t0)  // never started
        _ = state.remoteClaimed("R-1", by: "node-b", started: true, at: ActionTranscript.wall)
        let ticket = FrameTicket(stream: "P-1", holder: .session(1))
        #expect(T.lines(state.beginShutdown(), logs: true) == [
            "v-1 ← stream_ended P-1 shutdown",
            "v-1 ← stream_ended P-2 shutdown", "v-2 ← stream_ended P-2 shutdown",
            "v-1 ← stream_ended R-1 shutdown",
            "finish v-1", "finish v-2",
            "log notice: shutting down: ending streams and closing viewers",
            "metric: ended P-1", "close session 1 shutdown", "cluster: ended P-1 shutdown",
            "metric: ended P-2", "close session 2 shutdown", "cluster: ended P-2 shutdown",
            "metric: ended P-3", "close session 3 shutdown", "cluster: ended P-3 shutdown",
            "metric: ended R-1",
        ])
        #expect(state.streamHolding(of: "P-1")?.admits(ticket) != true, "a frame in flight is not offered after the end")
        #expect(state.frameAccepted(T.frame("P-1", seq: 1)).isEmpty)
        #expect(state.addViewer(.init(format: .json, remoteAddress: "c")).0 == nil)
        #expect(state.connectStream("P-4", session: T.session(4), now: t0).0 == nil)
        #expect(ViewerLeaveReason.finished.logLevel == .info, "viewers closed by a graceful shutdown are logged at info")
    }
}
