@testable import Pipeline
@testable import RelayCore
@testable import RelayRules
import Testing

/// The count limits as the state applies them, in the critical section that adds.
@Suite("Relay state: count limits")
struct CountLimitsTests {
    typealias T = ActionTranscript
    let t0 = ContinuousClock.now

    @Test func viewersPastTheTotalOrTheirTokensShareAreRefused() {
        var state = RelayState()
        state.countLimits = CountLimits(maxViewers: 3, maxViewersPerToken: 2)
        for _ in 0..<2 { _ = state.addViewer(.init(format: .json, tokenID: "jti-a", remoteAddress: "a")) }
        #expect(state.refusal(forViewerWithToken: "jti-a")?.limit == "viewers_per_token")
        #expect(state.refusal(forViewerWithToken: "jti-b") == nil)
        _ = state.addViewer(.init(format: .json, tokenID: "jti-b", remoteAddress: "b"))
        #expect(state.refusal(forViewerWithToken: nil) == LimitRefusal(limit: "viewers", reason: "the relay has its maximum of 3 viewers"))
    }

    @Test func aNewStreamPastTheLimitIsRefusedAReplacementNever() {
        var state = RelayState()
        state.countLimits = CountLimits(maxStreams: 1)
        _ = state.connectStream("P-1", session: T.session(1), now: t0)
        #expect(state.refusal(forStream: "P-2")?.limit == "streams")
        #expect(state.refusal(forStream: "P-1") == nil, "replacing a live stream is not a new stream")
    }
}
