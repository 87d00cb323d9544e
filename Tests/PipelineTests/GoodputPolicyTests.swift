@testable import Pipeline
import Testing

/// The built-in delivery policy as plain calls: a viewer's streams and
/// link in, a rung per stream out.
@Suite("goodput delivery policy")
struct GoodputPolicyTests {
    let t0 = ContinuousClock.now

    /// A 1280×720 stream at 30 fps: full 40 KB, 1/2 10 KB, 1/4 2.5 KB.
    func stream(_ id: String, visible: Bool = true, width: Int? = nil) -> StreamOffer {
        StreamOffer(id: id, visible: visible, displayWidth: width, fps: 30, rungs: [
            RungOption(label: "full", width: 1280, height: 720, bytesPerFrame: 40_000),
            RungOption(label: "1/2", width: 640, height: 360, bytesPerFrame: 10_000),
            RungOption(label: "1/4", width: 320, height: 180, bytesPerFrame: 2_500),
        ], allowed: 0...2, current: 0)
    }

    func input(_ streams: [StreamOffer], at second: Int, lost: Int? = nil, goodput: Double = 0, unsent: Int = 0) -> DeliveryInput {
        DeliveryInput(now: t0 + .seconds(second), preference: .auto, link: LinkFigures(goodput: goodput, linkLimited: unsent > 0, unsentBytes: unsent),
                      window: lost.map { LossWindow(offered: 30, replaced: $0) }, streams: streams)
    }

    @Test func theCostliestVisibleStreamStepsDownFirstAndAHiddenOneCostsNothing() {
        var policy = GoodputPolicy()
        // 500 KB/s ÷ 1.25 = 400 KB/s for two full streams of 1.2 MB/s each, and a hidden third:
        // A → 1/2, B → 1/2 (600 KB/s), A → 1/4 (375 KB/s) fits.
        let chosen = policy.choose(input([stream("A"), stream("B"), stream("C", visible: false)], at: 1, lost: 20, goodput: 500_000, unsent: 100_000))
        #expect(chosen.mapValues(\.rung) == ["A": 2, "B": 1, "C": 0])
        #expect(chosen.values.allSatisfy { $0.maxFPS == nil }, "it fits: no frame-rate cap")
        #expect(policy.budget == 400_000)
    }

    @Test func aSlowReaderOnAGoodLinkKeepsItsPictureAndRateAndGetsTheNewestFrameAtEachRead() {
        var policy = GoodputPolicy()
        // Lossy and data waiting, but its TCP had acknowledged everything: the reader, not the link.
        var slowReader = input([stream("A")], at: 1, lost: 28, goodput: 60_000, unsent: 100_000)
        slowReader.link.readerLimited = true
        #expect(policy.choose(slowReader) == ["A": DeliveryChoice(rung: 0)])
        #expect(policy.budget == nil, "no cap: a smaller picture would not make it read faster")
        // The same window with the link the limit: stepped down and capped.
        #expect(policy.choose(input([stream("A")], at: 2, lost: 28, goodput: 60_000, unsent: 100_000)) == ["A": DeliveryChoice(rung: 2, maxFPS: 19)])
    }

    /// Frames lost in a window where no reading found the link holding
    /// delivery back were lost to something else: a relay on a loaded
    /// machine writing late, with nothing waiting in the kernel (a load
    /// check saw a slow reader on loopback stepped down for 5 of 8 frames
    /// lost that way). Only the link's own loss steps a viewer down.
    @Test func framesLostWhileTheLinkWasNotSeenHoldingDeliveryBackAreNotCongestion() {
        var policy = GoodputPolicy()
        var lostElsewhere = input([stream("A")], at: 1, lost: 25, goodput: 556_930)
        #expect(!lostElsewhere.link.linkLimited && !lostElsewhere.link.readerLimited)
        #expect(policy.choose(lostElsewhere) == ["A": DeliveryChoice(rung: 0)])
        #expect(policy.budget == nil)
        // The same loss with the link seen as the limit steps down.
        lostElsewhere.link.linkLimited = true
        #expect(policy.choose(lostElsewhere) == ["A": DeliveryChoice(rung: 1)])
        #expect(policy.budget == 556_930 / 1.25)
    }

    /// Steps up are small at first (1.25×) and grow by 1.25× per calm step
    /// up to 2×; a try that congests at once resets them and doubles the
    /// wait before the next one.
    @Test func aStepUpThatCongestsAtOnceDoublesTheWaitBeforeTheNextTry() {
        var policy = GoodputPolicy()
        let streams = [stream("A")]
        // Congested: 250 KB/s ÷ 1.25 = 200 KB/s → 1/4 (75 KB/s); 1/2 needs 300 KB/s.
        #expect(policy.choose(input(streams, at: 0, lost: 20, goodput: 250_000, unsent: 50_000)) == ["A": DeliveryChoice(rung: 2)])
        var budgets: [Int] = []
        var rungs: [Int] = []
        for second in 1...16 {
            // The try after 2 calm seconds congests at once (3 s): the next one waits 4 s, not 2.
            let lost = second == 3 ? 20 : 0
            rungs.append(policy.choose(input(streams, at: second, lost: lost, goodput: 250_000, unsent: lost > 0 ? 50_000 : 0))["A"]!.rung)
            budgets.append(Int(policy.budget ?? 0))
        }
        // 2 s: ×1.25; 3 s: congested, back to 200 KB/s; 7 s: ×1.25 again, 11 s: ×1.5625 (1/2 fits), 15 s: ×1.95.
        #expect(budgets == [200_000, 250_000, 200_000, 200_000, 200_000, 200_000, 250_000, 250_000, 250_000, 250_000,
                            390_625, 390_625, 390_625, 390_625, 762_939, 762_939])
        #expect(rungs == [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1])
        // Calm from then on, the steps double: 1.5 MB/s at 19 s covers full (1.2 MB/s), and the cap is lifted.
        for second in 17...19 { _ = policy.choose(input(streams, at: second, lost: 0, goodput: 250_000, unsent: 0)) }
        #expect(policy.budget == nil)
    }

    @Test func withoutCongestionEveryTileGetsItsDisplayFit() {
        var policy = GoodputPolicy()
        #expect(policy.choose(input([stream("A", width: 300), stream("B", width: 600), stream("C", width: 2000), stream("D")], at: 0, lost: 0))
                == ["A": 2, "B": 1, "C": 0, "D": 0].mapValues { DeliveryChoice(rung: $0) })
        var unfitted = GoodputPolicy(configuration: .init(fitToDisplay: false))
        #expect(unfitted.choose(input([stream("A", width: 300)], at: 0, lost: 0)) == ["A": DeliveryChoice(rung: 0)])
    }

    /// 50 KB/s ÷ 1.25 = 40 KB/s, and the smallest rung costs 75 KB/s at
    /// 30 fps: 1/4 at 16 fps, so frames do not queue in front of the link.
    @Test func whenEvenTheSmallestRungIsTooMuchTheFrameRateIsCapped() {
        var policy = GoodputPolicy()
        let chosen = policy.choose(input([stream("A")], at: 0, lost: 20, goodput: 50_000, unsent: 20_000))
        #expect(chosen == ["A": DeliveryChoice(rung: 2, maxFPS: 16)])
        var tiny = GoodputPolicy()
        #expect(tiny.choose(input([stream("A")], at: 0, lost: 20, goodput: 1_000, unsent: 20_000))["A"]?.maxFPS == 1, "never below 1 fps")
    }
}
