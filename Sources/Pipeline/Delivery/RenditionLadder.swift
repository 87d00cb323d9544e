/// One step of a rendition ladder below full size: a libturbojpeg DCT scale
/// factor and the JPEG quality the smaller picture is encoded at.
public struct RenditionStep: Sendable, Equatable {
    public var numerator: Int
    public var denominator: Int
    public var quality: Int

    public init(numerator: Int, denominator: Int, quality: Int) {
        self.numerator = numerator
        self.denominator = denominator
        self.quality = quality
    }

    /// "1/2", as written in `pipelines.json` and sent to viewers as `rendition`.
    public var label: String { "\(numerator)/\(denominator)" }
    public var factor: Double { Double(numerator) / Double(denominator) }

    /// Parses "1/2" into a step with `quality`; nil unless both parts are positive integers.
    public init?(scale: String, quality: Int) {
        let parts = scale.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let n = Int(parts[0]), let d = Int(parts[1]), n > 0, d > 0 else { return nil }
        self.init(numerator: n, denominator: d, quality: quality)
    }

    /// The side of a picture of `side` pixels at this scale, as libturbojpeg rounds it (up).
    public func scaled(_ side: Int) -> Int { (side * numerator + denominator - 1) / denominator }
}

/// The pictures a stream can be sent in, largest first. Rung 0 is the frame
/// as it arrived; rung n is `steps[n-1]`. The `downscale` stage declares a
/// stream's ladder on every frame and makes only the rungs some viewer is
/// being sent (`FrameSink.wantedRenditions`); the delivery policy picks a
/// rung per viewer and stream.
public struct RenditionLadder: Sendable, Equatable {
    public var steps: [RenditionStep]
    /// Under `downscale`'s `when: "always"`, viewers that did not ask for
    /// `full` are never sent rung 0: the pipeline exists to send less.
    public var fullForAuto: Bool

    public init(steps: [RenditionStep], fullForAuto: Bool = true) {
        self.steps = steps
        self.fullForAuto = fullForAuto
    }

    /// No steps: every viewer gets the frame as it arrived.
    public static let fullOnly = RenditionLadder(steps: [])

    /// Rungs including full.
    public var rungCount: Int { steps.count + 1 }
    public var lowestRung: Int { steps.count }

    /// "full" for rung 0, the step's scale otherwise.
    public func label(ofRung rung: Int) -> String {
        rung == 0 || rung > steps.count ? "full" : steps[rung - 1].label
    }

    /// The scale factor of a rung (1 for full).
    public func factor(ofRung rung: Int) -> Double {
        rung == 0 || rung > steps.count ? 1 : steps[rung - 1].factor
    }
}

/// A set of ladder rungs, one bit each: what a stream's viewers are being
/// sent, so `downscale` makes exactly those renditions and no other.
public struct RenditionSet: Sendable, Equatable, Hashable {
    public private(set) var rawValue: UInt32

    public init(rawValue: UInt32 = 0) { self.rawValue = rawValue }

    public init(_ rungs: some Sequence<Int>) {
        self.init()
        for rung in rungs { insert(rung) }
    }

    public static let none = RenditionSet()

    public mutating func insert(_ rung: Int) {
        guard (0..<32).contains(rung) else { return }
        rawValue |= 1 << UInt32(rung)
    }

    public func contains(_ rung: Int) -> Bool { (0..<32).contains(rung) && rawValue & (1 << UInt32(rung)) != 0 }

    /// Whether any rung below full is in the set.
    public var needsDownscaled: Bool { rawValue & ~1 != 0 }

    /// The rungs in the set, largest picture first.
    public var rungs: [Int] { (0..<32).filter(contains) }
}
