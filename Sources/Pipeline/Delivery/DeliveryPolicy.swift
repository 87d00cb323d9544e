/// What a viewer asked to receive (`set_quality`, `?quality=`).
public enum QualityPreference: String, Sendable {
    /// Whatever the delivery policy picks for its link and display.
    case auto
    /// Always the frame as it arrived, never a smaller rendition.
    case full
    /// Never the full frame: at most the ladder's first step.
    case low
}

/// Picks, for one viewer, which rung of each stream's rendition ladder it
/// is sent: the one component that decides picture size, declared and
/// swappable like a stage.
///
/// One instance per viewer, so per-viewer state (a byte budget, when it
/// last stepped up) is plain stored state; the relay calls `choose` once a
/// second with the viewer's measured link, and again at once when the
/// viewer says what it shows (`view`). Its parameters come from the
/// `"delivery"` object of `pipelines.json`, checked against `declaration`
/// by `framepipe check` and listed by `framepipe stages`. A user's package
/// registers its own with `StageRegistry.register(policy:)`.
///
/// `choose` runs under the relay's hub lock (it is part of the relay's
/// decisions, which are made atomically): it must be a quick, pure
/// computation on its input, with no I/O, waiting, locks or calls into the
/// relay.
public protocol DeliveryPolicy: Sendable {
    associatedtype Configuration: Sendable

    static var declaration: PolicyDeclaration { get }
    static func configuration(from parameters: StageParameters) -> Configuration
    init(configuration: Configuration)

    /// What each stream of `input.streams` is sent, by id. A stream left
    /// out keeps its current rung; a rung outside the stream's `allowed`
    /// range is moved into it (the viewer's own `full`/`low` always wins).
    mutating func choose(_ input: DeliveryInput) -> [String: DeliveryChoice]
}

/// What a policy picked for one stream of one viewer.
public struct DeliveryChoice: Sendable, Equatable {
    /// The rung of the stream's ladder (0 = full).
    public var rung: Int
    /// At most this many frames a second (the newest when one is due);
    /// nil: every frame the link takes. For a link that cannot carry even
    /// the smallest rung at the stream's rate, so frames do not queue.
    public var maxFPS: Double?

    public init(rung: Int, maxFPS: Double? = nil) {
        self.rung = rung
        self.maxFPS = maxFPS
    }
}

/// A policy's name, summary and parameters, as `framepipe stages` lists them.
public struct PolicyDeclaration: Sendable {
    public let name: String
    public let summary: String
    public let details: String
    public let parameters: [ParameterSpec]

    public init(name: String, summary: String, details: String = "", parameters: [any AnyParameter] = []) {
        self.name = name
        self.summary = summary
        self.details = details
        self.parameters = parameters.map(\.spec)
    }

    public func parameter(named name: String) -> ParameterSpec? {
        parameters.first { $0.name == name }
    }
}

/// Everything a policy may know about one viewer when it chooses.
public struct DeliveryInput: Sendable {
    public var now: ContinuousClock.Instant
    public var preference: QualityPreference
    public var link: LinkFigures
    /// Frames offered and replaced unsent (latest wins) over the last
    /// second; nil when `choose` runs because of a `view` hint, not a tick.
    public var window: LossWindow?
    /// Every stream the viewer watches, by id.
    public var streams: [StreamOffer]

    public init(now: ContinuousClock.Instant, preference: QualityPreference, link: LinkFigures, window: LossWindow?, streams: [StreamOffer]) {
        self.now = now
        self.preference = preference
        self.link = link
        self.window = window
        self.streams = streams
    }
}

/// What TCP says about the viewer's link (`TCP_INFO`), nil where unknown.
public struct LinkFigures: Sendable, Equatable {
    /// Bytes per second the link acknowledged, smoothed over ~2 s.
    public var goodput: Double?
    /// In this window the link was mostly busy carrying data (segments in
    /// flight or bytes waiting in the kernel, in more readings than the
    /// reader held delivery back, and in one at least): frames lost went to
    /// it, and while they are lost `goodput` is what it carries. Without it,
    /// frames lost in the window were not the link's doing.
    public var linkLimited: Bool
    public var rtt: Duration?
    /// Written by the relay, not yet sent by TCP.
    public var unsentBytes: Int
    /// In this window the viewer's reader, not its link, mostly held
    /// delivery back (its TCP had acknowledged everything and closed its
    /// window): a slow device on a good link. Its goodput is its reading
    /// pace, and frames it lost went to newer ones it read instead; a
    /// smaller picture or a frame-rate cap would not make it read faster.
    public var readerLimited: Bool

    public init(goodput: Double? = nil, linkLimited: Bool = false, rtt: Duration? = nil, unsentBytes: Int = 0, readerLimited: Bool = false) {
        self.goodput = goodput
        self.linkLimited = linkLimited
        self.rtt = rtt
        self.unsentBytes = unsentBytes
        self.readerLimited = readerLimited
    }
}

/// A measuring window's frame counts for one viewer.
public struct LossWindow: Sendable, Equatable {
    public var offered: Int
    public var replaced: Int
    public init(offered: Int, replaced: Int) {
        self.offered = offered
        self.replaced = replaced
    }
}

/// One stream as a policy sees it for one viewer.
public struct StreamOffer: Sendable, Equatable {
    public var id: String
    /// The viewer shows it (a hidden tile or tab gets no frames at all).
    public var visible: Bool
    /// The size the viewer draws it at, in device pixels; nil until it says.
    public var displayWidth: Int?
    public var displayHeight: Int?
    public var fps: Double
    /// Rung 0 (full) first, then each step of the stream's ladder.
    public var rungs: [RungOption]
    /// The rungs this viewer may be sent: `full` → 0...0, `low` → from 1.
    public var allowed: ClosedRange<Int>
    public var current: Int

    public init(id: String, visible: Bool = true, displayWidth: Int? = nil, displayHeight: Int? = nil, fps: Double,
                rungs: [RungOption], allowed: ClosedRange<Int>, current: Int) {
        self.id = id
        self.visible = visible
        self.displayWidth = displayWidth
        self.displayHeight = displayHeight
        self.fps = fps
        self.rungs = rungs
        self.allowed = allowed
        self.current = current
    }
}

/// One rung of a stream's ladder, measured.
public struct RungOption: Sendable, Equatable {
    /// "full", "1/2", …
    public var label: String
    /// Its picture's size, once the relay knows the stream's dimensions.
    public var width: Int?
    public var height: Int?
    /// Bytes one frame of it costs on this viewer's socket (base64 for a
    /// JSON viewer): measured on the frames made, estimated from the full
    /// size and the scale factor before any was.
    public var bytesPerFrame: Double

    public init(label: String, width: Int? = nil, height: Int? = nil, bytesPerFrame: Double) {
        self.label = label
        self.width = width
        self.height = height
        self.bytesPerFrame = bytesPerFrame
    }
}
