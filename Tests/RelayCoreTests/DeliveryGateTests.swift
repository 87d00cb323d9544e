@testable import RelayCore
import Testing

/// A stream's delivery gate: what it lets through is what `RelayState.isCurrent` allows.
@Suite("Delivery gate")
struct DeliveryGateTests {
    let first = DeliveryTicket(stream: "P-1", holder: .session(1))

    @Test func offersOnlyWhileTheHolderStillServesTheStream() {
        let gate = DeliveryGate(DeliveryState(holder: .session(1), latestSeq: 4))
        #expect(gate.ifAdmitted(first) { "offered" } == "offered")
        gate.update(DeliveryState(holder: .session(2), latestSeq: 4))
        #expect(gate.ifAdmitted(first) { "offered" } == nil, "a frame the replaced connection had in flight")
        gate.update(nil)
        #expect(gate.ifAdmitted(DeliveryTicket(stream: "P-1", holder: .session(2))) { "offered" } == nil, "the stream ended")
    }

    @Test func aReplayOnlyWhileItIsStillTheLatestFrame() {
        let gate = DeliveryGate(DeliveryState(holder: .node("b"), latestSeq: 7))
        let replay = DeliveryTicket(stream: "P-1", holder: .node("b"), replayOf: 7)
        #expect(gate.ifAdmitted(replay) { true } == true)
        gate.update(DeliveryState(holder: .node("b"), latestSeq: 8))
        #expect(gate.ifAdmitted(replay) { true } == nil, "a newer frame was accepted: the replay could overtake it")
    }
}
