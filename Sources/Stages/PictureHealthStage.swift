import Foundation
import NIOCore
import Pipeline

/// Notices a camera that sends valid JPEGs of a useless picture: `frozen`
/// (a hung encoder repeating one image, even re-encoded), `dark` (the
/// lights off) or `covered` (a blanket over the lens, a lens turned to the
/// ceiling), and raises a `picture` stream event; `ok` when it recovers.
///
/// Every `every`-th frame, at most one each `interval` seconds, is looked
/// at as its 1/8-scale luma plane (one
/// DC value per 8×8 block, no colour conversion), from which come the mean,
/// the 99th percentile, the standard deviation, and the largest change of
/// any block since the last look. A live camera's sensor noise moves some
/// block by several levels even in a still room; a repeated or re-encoded
/// picture moves none by more than the quantisation, so `frozenDelta`
/// tells them apart without comparing bytes. (Bytes equal to the last
/// look's are still recognised first, so a hung encoder repeating one JPEG
/// costs a comparison, not a decode.)
///
/// Hysteresis: a condition must hold without a break for its `…After`
/// seconds to be raised; once raised, it clears only after `recoverAfter`
/// seconds in which its figure is clearly past the threshold (by a quarter),
/// so a picture that hovers at a threshold never flaps. Frames always pass.
public struct PictureHealthStage: Stage {
    public struct Configuration: Sendable {
        public var every: Int
        public var interval: Double
        public var frozenAfter: Double
        public var frozenDelta: Double
        public var darkAfter: Double
        public var darkMean: Double
        public var darkPeak: Double
        public var coveredAfter: Double
        public var coveredStdDev: Double
        public var recoverAfter: Double
    }

    static let every = Parameter.integer(
        "every", default: 1, in: 1...1000, help: "Look at every Nth frame (1: each one)…")
    static let interval = Parameter.number(
        "interval", default: 0.5, in: 0...60,
        help: "…and at most once in this many seconds (0: no limit), so a 30 fps camera costs no more than a 2 fps one")
    static let frozenAfter = Parameter.number(
        "frozenAfter", default: 20, in: 1...3600, help: "Seconds without change before the picture is \"frozen\"")
    static let frozenDelta = Parameter.number(
        "frozenDelta", default: 6, in: 0.5...128,
        help: "A picture has changed when some 8×8 block's mean luma moved by at least this much (0–255)")
    static let darkAfter = Parameter.number(
        "darkAfter", default: 10, in: 1...3600, help: "Seconds of darkness before the picture is \"dark\"")
    static let darkMean = Parameter.number(
        "darkMean", default: 20, in: 1...128, help: "Dark: mean luma (0–255) below this…")
    static let darkPeak = Parameter.number(
        "darkPeak", default: 48, in: 1...255,
        help: "…and 99% of the picture below this luma: a dim IR night picture with bright spots is not dark")
    static let coveredAfter = Parameter.number(
        "coveredAfter", default: 10, in: 1...3600, help: "Seconds of a featureless picture before it is \"covered\"")
    static let coveredStdDev = Parameter.number(
        "coveredStdDev", default: 6, in: 0.5...64, help: "Covered: luma standard deviation (0–255) below this, and not dark")
    static let recoverAfter = Parameter.number(
        "recoverAfter", default: 3, in: 0...600, help: "Seconds a raised condition must be clearly gone before \"ok\"")

    public static let declaration = StageDeclaration(
        name: "picture-health",
        summary: "Raise a picture event when the picture is frozen, dark or covered, and ok when it recovers",
        details: "Looks at every Nth frame's 1/8-scale luma (DCT scaling, no colour conversion), at most twice a second at the defaults; a repeat of the last look's bytes is judged without a decode. Frames always pass. Events: kind picture, state frozen, dark, covered or ok. Keeps a libturbojpeg handle, the last look and its JPEG per stream.",
        parameters: [every, interval, frozenAfter, frozenDelta, darkAfter, darkMean, darkPeak, coveredAfter, coveredStdDev, recoverAfter])

    public static func configuration(from parameters: StageParameters) -> Configuration {
        Configuration(every: parameters[every], interval: parameters[interval], frozenAfter: parameters[frozenAfter], frozenDelta: parameters[frozenDelta],
                      darkAfter: parameters[darkAfter], darkMean: parameters[darkMean], darkPeak: parameters[darkPeak],
                      coveredAfter: parameters[coveredAfter], coveredStdDev: parameters[coveredStdDev],
                      recoverAfter: parameters[recoverAfter])
    }

    /// What one look measured.
    public struct Look: Sendable, Equatable {
        public var meanLuma: Double
        public var peakLuma: Double
        public var stdDev: Double
        /// Largest change of any block since the previous look; nil for the first or after a size change.
        public var largestChange: Double?
    }

    /// One condition's hysteresis.
    struct Condition {
        /// Since when it has held without a break.
        var onset: (at: ContinuousClock.Instant, date: Date)?
        var raised = false
        /// Since when it has been clearly gone, while raised.
        var recovering: ContinuousClock.Instant?

        enum Reading { case holds, clears, unclear }

        mutating func update(_ reading: Reading, at now: ContinuousClock.Instant, date: Date, after: Double, recoverAfter: Double) {
            switch reading {
            case .holds:
                if onset == nil { onset = (now, date) }
                recovering = nil
                if let onset, now - onset.at >= .seconds(after) { raised = true }
            case .clears:
                if !raised { onset = nil; return }
                if recovering == nil { recovering = now }
                if let recovering, now - recovering >= .seconds(recoverAfter) {
                    raised = false
                    onset = nil
                    self.recovering = nil
                }
            case .unclear:
                break
            }
        }
    }

    let configuration: Configuration
    let context: StageContext
    let codec = TurboJPEG()
    private var seen = 0
    private var previous: (pixels: [UInt8], width: Int, height: Int)?
    /// The bytes of the last look: a hung encoder repeating them is judged
    /// without a decode (the entropy decode is most of a look's cost).
    private var previousJPEG: ByteBuffer?
    private var lastLookAt: ContinuousClock.Instant?
    var frozen = Condition(), dark = Condition(), covered = Condition()
    /// The state last raised (`ok` until something is wrong).
    public private(set) var state = StageEvent.ok
    public private(set) var lastLook: Look?
    /// Frames looked at, and how many of those were decoded (the rest repeated the last look's bytes).
    public private(set) var looks = 0, decodes = 0

    /// A state the stream already had when this instance started, taken
    /// up at the first look (it needs that look's instant).
    private var inherited: (condition: WritableKeyPath<Self, Condition>, since: Date)?

    static let kind = "picture"

    public init(configuration: Configuration, context: StageContext) {
        self.configuration = configuration
        self.context = context
        // A camera that reconnects, or a reload, makes a new instance: it
        // continues what the stream's picture was said to be, so it can
        // clear it (and does not say it again).
        if let standing = context.standing(kind: Self.kind), let condition = Self.condition(raising: standing.state) {
            state = standing.state
            inherited = (condition, standing.since)
        }
    }

    static func condition(raising state: String) -> WritableKeyPath<Self, Condition>? {
        switch state {
        case "frozen": \.frozen
        case "dark": \.dark
        case "covered": \.covered
        default: nil
        }
    }

    public mutating func process(_ frame: inout Frame) -> StageOutcome {
        seen += 1
        guard (seen - 1) % configuration.every == 0 else { return .pass }
        if let lastLookAt, frame.arrival - lastLookAt < .seconds(configuration.interval) { return .pass }
        guard let jpeg = frame.resolveJPEG() else { return .pass }
        lastLookAt = frame.arrival
        looks += 1
        let date = Date(timeIntervalSince1970: Double(frame.receivedAt) / 1000)
        if var repeated = lastLook, previousJPEG == jpeg {
            repeated.largestChange = 0
            judge(repeated, at: frame.arrival, date: date)
            return .pass
        }
        let header: JPEGHeader
        if let known = frame.header {
            header = known
        } else if case .success(let read) = codec.readHeader(jpeg) {
            header = read
            frame.header = read
        } else {
            return .pass  // not this stage's to judge: decode-check rejects it
        }
        decodes += 1
        guard case .success(let plane) = codec.lumaEighth(jpeg, header: header) else { return .pass }
        let look = Self.measure(plane.pixels, previous: previous.flatMap { $0.width == plane.width && $0.height == plane.height ? $0.pixels : nil })
        previous = plane
        previousJPEG = jpeg
        judge(look, at: frame.arrival, date: date)
        return .pass
    }

    /// Feeds one look through the three conditions and raises an event when
    /// the reported state changes. Dark and covered come before frozen: a
    /// dark or covered picture does not change either, and "dark" says why.
    mutating func judge(_ look: Look, at now: ContinuousClock.Instant, date: Date) {
        lastLook = look
        if let (condition, since) = inherited {
            self[keyPath: condition] = Condition(onset: (now, since), raised: true)
            inherited = nil
        }
        let c = configuration
        let margin = 1.25
        let isDark = look.meanLuma < c.darkMean && look.peakLuma < c.darkPeak
        let frozenReading: Condition.Reading = look.largestChange.map {
            $0 < c.frozenDelta ? .holds : $0 >= c.frozenDelta * margin ? .clears : .unclear
        } ?? .unclear
        let darkReading: Condition.Reading = isDark ? .holds
            : (look.meanLuma >= c.darkMean * margin || look.peakLuma >= c.darkPeak * margin) ? .clears : .unclear
        let coveredReading: Condition.Reading = !isDark && look.stdDev < c.coveredStdDev ? .holds
            : look.stdDev >= c.coveredStdDev * margin ? .clears : .unclear
        frozen.update(frozenReading, at: now, date: date, after: c.frozenAfter, recoverAfter: c.recoverAfter)
        dark.update(darkReading, at: now, date: date, after: c.darkAfter, recoverAfter: c.recoverAfter)
        covered.update(coveredReading, at: now, date: date, after: c.coveredAfter, recoverAfter: c.recoverAfter)

        let raised = [("dark", dark), ("covered", covered), ("frozen", frozen)].first { $0.1.raised }
        let next = raised?.0 ?? StageEvent.ok
        guard next != state else { return }
        state = next
        let since = raised?.1.onset?.date ?? date
        context.raise(StageEvent(kind: Self.kind, state: next, since: since, details: [
            ("mean_luma", .number(Self.rounded(look.meanLuma))), ("peak_luma", .number(Self.rounded(look.peakLuma))),
            ("luma_stddev", .number(Self.rounded(look.stdDev))),
            ("largest_change", look.largestChange.map { .number(Self.rounded($0)) } ?? .null),
        ]))
    }

    /// Mean, 99th percentile, standard deviation, and the largest change from `previous`.
    static func measure(_ pixels: [UInt8], previous: [UInt8]?) -> Look {
        var histogram = [Int](repeating: 0, count: 256)
        var sum = 0, squares = 0
        for p in pixels {
            histogram[Int(p)] += 1
            sum += Int(p)
            squares += Int(p) * Int(p)
        }
        let n = max(1, pixels.count)
        let mean = Double(sum) / Double(n)
        let variance = max(0, Double(squares) / Double(n) - mean * mean)
        var below = 0, peak = 255
        for (level, count) in histogram.enumerated() {
            below += count
            if below * 100 >= n * 99 { peak = level; break }
        }
        var change: Double?
        if let previous, previous.count == pixels.count {
            var largest = 0
            for i in pixels.indices { largest = max(largest, abs(Int(pixels[i]) - Int(previous[i]))) }
            change = Double(largest)
        }
        return Look(meanLuma: mean, peakLuma: Double(peak), stdDev: variance.squareRoot(), largestChange: change)
    }

    private static func rounded(_ x: Double) -> Double { (x * 10).rounded() / 10 }
}
