/// The built-in delivery policy: each tile gets the smallest rendition at
/// least as wide as it is drawn, and a viewer whose link falls behind
/// steps down the ladder until what it is sent fits what its link carries.
///
/// Per viewer it keeps a byte budget (bytes per second, none at first):
///
/// - A window (about a second) in which more than `congestedLoss` of the
///   offered frames were replaced unsent while the link was seen holding
///   delivery back, or in which more than `maxQueueMs` of data waited in
///   the kernel, is *congested*: the budget
///   becomes the link's measured goodput divided by `headroom` (while
///   congested, the link sets the pace, so goodput is what it carries).
/// - After `stepUpAfter` seconds without congestion the budget grows, to
///   try larger pictures: by 1.25× first after a congestion, then by 1.25×
///   more each calm step, up to doubling. The first tries above what the
///   link just carried are small, so one that congests queues a fraction
///   of a frame, not a second's worth (on a 0.5 Mbit/s link doubling cost
///   age p95 0.5 s, 1.25× steps 0.2 s); a link that got much better is
///   still found in a few steps (a budget first measured during TCP's slow
///   start is too low, and must not take long to recover). A try that
///   congests at once doubles the wait before the next one (up to 8×), so
///   a viewer on the edge of a rung does not flap.
///
/// Choosing: every visible stream starts at its display fit (or full); while
/// the streams' bytes × fps exceed the budget, the costliest stream that
/// can go one step lower does. If even the lowest rungs exceed it, each
/// visible stream's frame rate is capped in proportion (at least 1 fps), so
/// what the link is sent stays under what it carries and frames do not
/// queue in front of it. Hidden streams cost nothing.
public struct GoodputPolicy: DeliveryPolicy {
    public struct Configuration: Sendable {
        public var headroom: Double
        public var congestedLoss: Double
        public var maxQueueMs: Int
        public var stepUpAfter: Double
        public var fitToDisplay: Bool

        public init(headroom: Double = 1.25, congestedLoss: Double = 0.25, maxQueueMs: Int = 200, stepUpAfter: Double = 2,
                    fitToDisplay: Bool = true) {
            self.headroom = headroom
            self.congestedLoss = congestedLoss
            self.maxQueueMs = maxQueueMs
            self.stepUpAfter = stepUpAfter
            self.fitToDisplay = fitToDisplay
        }
    }

    static let headroom = Parameter.number(
        "headroom", default: 1.25, in: 1...4,
        help: "After congestion, what the viewer is sent (bytes × fps) may use at most goodput ÷ headroom")
    static let congestedLoss = Parameter.number(
        "congestedLoss", default: 0.25, in: 0.01...1,
        help: "Share of a second's offered frames replaced unsent (latest wins), while the link is seen holding delivery back, that marks it as behind")
    static let maxQueueMs = Parameter.integer(
        "maxQueueMs", default: 200, in: 10...10_000,
        help: "Unsent bytes worth more than this many ms of goodput also mark the link as behind")
    static let stepUpAfter = Parameter.number(
        "stepUpAfter", default: 2, in: 0.5...600,
        help: "Seconds without congestion before raising what the viewer may be sent (1.25× first, growing to 2×; the wait doubles after a failed try, up to 8×)")
    static let fitToDisplay = Parameter.boolean(
        "fitToDisplay", default: true,
        help: "Send a tile the smallest rendition at least as wide as it is drawn, not more")

    public static let declaration = PolicyDeclaration(
        name: "goodput",
        summary: "Fit each tile's rendition to its drawn size, step down while the link falls behind",
        details: "Starts every visible stream at the smallest rendition at least as wide as its tile (full without a view hint). "
            + "A congested second caps what the viewer is sent at goodput ÷ headroom; the costliest streams step down first. "
            + "If even the smallest rungs are too much, caps each stream's fps in proportion (at least 1). "
            + "Raises the cap after stepUpAfter calm seconds, by 1.25× first and up to 2× per step. Hidden tiles get nothing.",
        parameters: [headroom, congestedLoss, maxQueueMs, stepUpAfter, fitToDisplay])

    public static func configuration(from parameters: StageParameters) -> Configuration {
        Configuration(headroom: parameters[headroom], congestedLoss: parameters[congestedLoss], maxQueueMs: parameters[maxQueueMs],
                      stepUpAfter: parameters[stepUpAfter], fitToDisplay: parameters[fitToDisplay])
    }

    public let configuration: Configuration
    /// Bytes per second the viewer may be sent; nil: no limit seen yet.
    public private(set) var budget: Double?
    private var calmSince: ContinuousClock.Instant?
    private var lastStepUp: ContinuousClock.Instant?
    private var backoff: Double = 1
    /// What the next calm step multiplies the budget by.
    private var growth = Self.firstGrowth
    static let firstGrowth = 1.25

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    public init() { self.init(configuration: Configuration()) }

    public mutating func choose(_ input: DeliveryInput) -> [String: DeliveryChoice] {
        if let window = input.window { judge(window, link: input.link, streams: input.streams, now: input.now) }
        return pick(input.streams)
    }

    /// Whether the second just ended was congested, and what that does to the budget.
    private mutating func judge(_ window: LossWindow, link: LinkFigures, streams: [StreamOffer], now: ContinuousClock.Instant) {
        let lossy = window.offered >= 5 && Double(window.replaced) > Double(window.offered) * configuration.congestedLoss
        let goodput = link.goodput ?? 0
        let queued = goodput > 0 && Double(link.unsentBytes) / goodput * 1000 > Double(configuration.maxQueueMs)
        // Frames lost count only when the link was seen holding delivery back:
        // a slow reader on a good link is not congestion (it gets the newest
        // frame each time it reads, at its size and full rate), nor is a relay
        // on a loaded machine that wrote late with nothing waiting in the kernel.
        if (lossy && link.linkLimited) || queued, goodput > 0, !link.readerLimited {
            // While congested the link sets the pace, so goodput is what it carries: the cap follows it, up or down.
            budget = goodput / configuration.headroom
            growth = Self.firstGrowth
            if let lastStepUp, (now - lastStepUp).seconds < configuration.stepUpAfter * backoff * 2 {
                backoff = min(backoff * 2, 8)
            }
            calmSince = now
            return
        }
        guard let current = budget else { return }
        let calm = calmSince ?? now
        calmSince = calm
        let wait = configuration.stepUpAfter * backoff
        guard (now - calm).seconds >= wait else { return }
        if let lastStepUp, (now - lastStepUp).seconds >= wait * 4 { backoff = 1 }
        calmSince = now
        lastStepUp = now
        let grown = current * growth
        growth = min(2, growth * Self.firstGrowth)
        // Once the budget covers every visible stream at its fit, it limits nothing.
        budget = grown >= demand(streams, rungs: fits(streams)) ? nil : grown
    }

    private func pick(_ streams: [StreamOffer]) -> [String: DeliveryChoice] {
        var chosen = fits(streams)
        guard let budget else { return chosen.mapValues { DeliveryChoice(rung: $0) } }
        var total = demand(streams, rungs: chosen)
        while total > budget {
            // The costliest visible stream that can still go lower steps down once.
            // On a tie the first in id order goes, so the choice is the same every time.
            var costliest: StreamOffer?
            for stream in streams where stream.visible && chosen[stream.id]! < stream.allowed.upperBound {
                if costliest == nil || cost(stream, chosen[stream.id]!) > cost(costliest!, chosen[costliest!.id]!) { costliest = stream }
            }
            guard let costliest else { break }
            let before = cost(costliest, chosen[costliest.id]!)
            chosen[costliest.id]! += 1
            total += cost(costliest, chosen[costliest.id]!) - before
        }
        guard total > budget, total > 0 else { return chosen.mapValues { DeliveryChoice(rung: $0) } }
        // Even the lowest rungs are more than the link carries: fewer frames, each fresh.
        let share = budget / total
        var choices: [String: DeliveryChoice] = [:]
        for stream in streams {
            // Whole and half frames a second, so a cap does not change with every fps reading.
            let cap = stream.visible ? max(1, (stream.fps * share * 2).rounded(.down) / 2) : nil
            choices[stream.id] = DeliveryChoice(rung: chosen[stream.id]!, maxFPS: cap)
        }
        return choices
    }

    /// Each stream's largest allowed rung, or with `fitToDisplay` the smallest one still as wide as its tile.
    private func fits(_ streams: [StreamOffer]) -> [String: Int] {
        var rungs: [String: Int] = [:]
        for stream in streams {
            var rung = stream.allowed.lowerBound
            if configuration.fitToDisplay, let drawn = stream.displayWidth {
                for candidate in stream.allowed where candidate < stream.rungs.count {
                    guard let width = stream.rungs[candidate].width, width >= drawn else { break }
                    rung = candidate
                }
            }
            rungs[stream.id] = rung
        }
        return rungs
    }

    private func demand(_ streams: [StreamOffer], rungs: [String: Int]) -> Double {
        streams.reduce(0) { $0 + cost($1, rungs[$1.id] ?? $1.current) }
    }

    private func cost(_ stream: StreamOffer, _ rung: Int) -> Double {
        guard stream.visible, stream.rungs.indices.contains(rung) else { return 0 }
        return stream.rungs[rung].bytesPerFrame * stream.fps
    }
}
