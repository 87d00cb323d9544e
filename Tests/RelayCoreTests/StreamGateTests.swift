@testable import RelayCore
@testable import RelayRules
import Testing

/// A stream's gate: what it lets through is what `StreamHolding.admits` allows, with
/// the latest seq following the frames offered through it.
@Suite("Stream gate")
struct StreamGateTests {
    let first = FrameTicket(stream: "P-1", holder: .session(1))

    @Test func offersOnlyWhileTheHolderStillServesTheStream() {
        let gate = StreamGate(StreamHolding(holder: .session(1), latestSeq: 4))
        #expect(gate.ifAdmitted(first, seq: 5) { "offered" } == "offered")
        gate.update(StreamHolding(holder: .session(2), latestSeq: 4))
        #expect(gate.ifAdmitted(first, seq: 5) { "offered" } == nil, "a frame the replaced connection had in flight")
        gate.update(nil)
        #expect(gate.ifAdmitted(FrameTicket(stream: "P-1", holder: .session(2)), seq: 5) { "offered" } == nil, "the stream ended")
    }

    @Test func aReplayOnlyWhileItIsStillTheLatestFrame() {
        let gate = StreamGate(StreamHolding(holder: .node("b"), latestSeq: 7))
        let replay = FrameTicket(stream: "P-1", holder: .node("b"), replayOf: 7)
        #expect(gate.ifAdmitted(replay, seq: 7) { true } == true)
        gate.update(StreamHolding(holder: .node("b"), latestSeq: 8))
        #expect(gate.ifAdmitted(replay, seq: 7) { true } == nil, "a newer frame was accepted: the replay could overtake it")
    }

    @Test func aReplayIsRefusedOnceANewerFrameWasOfferedThroughTheGate() {
        let gate = StreamGate(StreamHolding(holder: .session(1), latestSeq: 7))
        let replay = FrameTicket(stream: "P-1", holder: .session(1), replayOf: 7)
        #expect(gate.ifAdmitted(first, seq: 8) { true } == true)
        #expect(gate.ifAdmitted(replay, seq: 7) { true } == nil, "frame 8 was offered: 7 would overtake it")
    }

    @Test func anUpdateForTheSameHolderKeepsANewerFrameAlreadyOffered() {
        let gate = StreamGate(StreamHolding(holder: .session(1), latestSeq: 7))
        #expect(gate.ifAdmitted(first, seq: 9) { true } == true)
        gate.update(StreamHolding(holder: .session(1), latestSeq: 8))  // the hub's copy, made before 9's offers
        #expect(gate.ifAdmitted(FrameTicket(stream: "P-1", holder: .session(1), replayOf: 8), seq: 8) { true } == nil)
        gate.update(StreamHolding(holder: .session(2), latestSeq: 2))
        #expect(gate.ifAdmitted(FrameTicket(stream: "P-1", holder: .session(2), replayOf: 2), seq: 2) { true } == true,
                "a new holder's seqs start from its own state")
    }
}
