import Foundation
@testable import Pipeline
@testable import RelayCore
@testable import RelayRules
import Testing

/// Stages' stream events as the relay's rules treat them: told once per
/// change, kept for late viewers, counted, and passed on by the node that
/// serves the stream only.
@Suite("Relay state: stream health")
struct RelayStateHealthTests {
    typealias T = ActionTranscript
    let t0 = ContinuousClock.now
    static func picture(_ state: String, at seconds: Double = 0) -> StageEvent {
        StageEvent(kind: "picture", state: state, since: Date(timeIntervalSince1970: 1_800_000_000 + seconds),
                   details: [("mean_luma", .number(3))])
    }

    @Test func aChangeIsToldToWatchersOnceAndPassedOn() {
        var state = RelayState()
        _ = state.addViewer(.init(format: .json, remoteAddress: "a"))
        _ = state.connectStream("P-1", session: T.session(1), now: t0)
        _ = state.frameAccepted(T.frame("P-1", seq: 0))
        #expect(T.lines(state.streamHealth("P-1", Self.picture("ok")), events: true).isEmpty, "ok is no news")
        #expect(T.lines(state.streamHealth("P-1", Self.picture("frozen")), logs: true, events: true) == [
            "v-1 ← stream_health P-1 picture frozen", "metric: health picture frozen", "log warning: stream health problem",
            "cluster: health P-1 picture frozen", "event: stream_health P-1 picture frozen"])
        #expect(state.streamHealth("P-1", Self.picture("frozen", at: 5)).isEmpty, "the same state again changes nothing")
        #expect(T.lines(state.streamHealth("P-1", Self.picture("ok", at: 40)), logs: true, events: true) == [
            "v-1 ← stream_health P-1 picture ok", "metric: health picture ok", "log notice: stream health recovered",
            "cluster: health P-1 picture ok", "event: stream_health P-1 picture ok"])
    }

    @Test func aLateViewerHearsEveryStateButOKRightAfterItLearnsOfTheStream() {
        var state = RelayState()
        _ = state.connectStream("P-1", session: T.session(1), now: t0)
        // Raised while the first frame ran through the pipeline, before the stream started.
        #expect(T.lines(state.streamHealth("P-1", Self.picture("dark"))) == ["metric: health picture dark", "cluster: health P-1 picture dark"])
        let early = state.addViewer(.init(format: .json, remoteAddress: "a")).1
        #expect(T.lines(early).first == "v-1 ← viewer_connected []")
        #expect(T.lines(state.frameAccepted(T.frame("P-1", seq: 0))).prefix(2) == ["v-1 ← stream_started P-1", "v-1 ← stream_health P-1 picture dark"])
        let late = T.lines(state.addViewer(.init(format: .json, remoteAddress: "b")).1)
        #expect(late.prefix(3) == ["v-2 ← viewer_connected [P-1]", "v-2 ← stream_health P-1 picture dark", "deliver P-1#0 → v-2:full"])
        // One that subscribes to it later: stream_started, its health, then its cached frame.
        _ = state.addViewer(.init(format: .json, streams: ["other"], remoteAddress: "c"))
        #expect(T.lines(state.subscribe("v-3", to: ["P-1"])).prefix(3) == [
            "v-3 ← stream_started P-1", "v-3 ← stream_health P-1 picture dark", "deliver P-1#0 → v-3:full"])
        _ = state.streamHealth("P-1", Self.picture("ok"))
        #expect(T.lines(state.addViewer(.init(format: .json, remoteAddress: "d")).1).prefix(2) == [
            "v-4 ← viewer_connected [P-1]", "deliver P-1#0 → v-4:full"])
        #expect(state.streamSnapshots(scope: .all).first?.health["picture"]?.state == "ok")
    }

    @Test func anotherNodesStreamIsToldHereButNotPassedOnAgain() {
        var state = RelayState()
        _ = state.addViewer(.init(format: .json, remoteAddress: "a"))
        _ = state.remoteClaimed("P-9", by: "node-b", started: true, at: ActionTranscript.wall)
        #expect(T.lines(state.remoteHealth("P-9", by: "node-c", Self.picture("covered"))).isEmpty, "not the node serving it")
        #expect(T.lines(state.remoteHealth("P-9", by: "node-b", Self.picture("covered")), events: true) == [
            "v-1 ← stream_health P-9 picture covered", "metric: health picture covered"])
    }
}
