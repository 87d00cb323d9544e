import Logging

/// One step of a pipeline, instantiated once per stream.
///
/// A stage *returns* what should happen to a frame instead of calling the
/// next stage, so the `PipelineRunner` can time every stage, name the one
/// that dropped or rejected a frame, and a test is a plain call:
///
/// ```
///  frame ──▶ stage 1 ──pass──▶ stage 2 ──pass──▶ … ──▶ sink (fan-out)
///              │                  │
///              └─reject─┐         └─drop (filtered, not an error)
///                       ▼
///        observe(rejection) on every later stage
/// ```
///
/// A rejection travels on to the stages after the rejecting one as an event
/// (like SwiftNIO's `errorCaught`), which is how an `error-counter` placed
/// after the validators sees every bad frame. Messages that could not even
/// be parsed into a frame enter the same way, before the first stage.
///
/// Per-stream state (an error count, a libturbojpeg handle) is plain stored
/// state: a stage instance belongs to one stream and is only touched by that
/// stream's task. Thrown errors are not part of the contract: a bad frame is
/// a `.reject`, never a crash.
public protocol Stage: SendableMetatype {
    /// The typed, validated configuration, shared by every stream's instance.
    associatedtype Configuration: Sendable

    /// Name, summary and parameters: the single declaration that drives
    /// config parsing, validation, `framepipe stages` and the README table.
    static var declaration: StageDeclaration { get }

    /// Builds the typed configuration from parameters that the loader has
    /// already checked against `declaration` and filled with defaults.
    static func configuration(from parameters: StageParameters) -> Configuration

    init(configuration: Configuration, context: StageContext)

    /// Decides what happens to `frame`; may fill in decoded data or renditions.
    mutating func process(_ frame: inout Frame) -> StageOutcome

    /// Sees a frame rejected earlier in the chain. Return `.closeStream` to end
    /// the stream (the error counter does), nil to let it go on.
    mutating func observe(_ rejection: Rejection) -> StreamEndReason?
}

extension Stage {
    public mutating func observe(_ rejection: Rejection) -> StreamEndReason? { nil }
}

/// What a stage decided about a frame.
public enum StageOutcome: Sendable, Equatable {
    /// Hand the (possibly changed) frame to the next stage.
    case pass
    /// Filter the frame out quietly: not an error (a rate limit, a duplicate).
    case drop(reason: String)
    /// The frame is bad: it is dropped, logged, counted, and later stages observe it.
    case reject(Rejection)
    /// End the stream with this reason; the frame goes no further.
    case closeStream(StreamEndReason)
}

/// Why a frame was refused, in two forms: a short code for metrics labels
/// and a sentence for the log.
public struct Rejection: Sendable, Equatable, CustomStringConvertible {
    /// Who refused it: a message that never became a frame (bad JSON, a
    /// non-string `frame`), or a stage of the pipeline.
    public enum Origin: Sendable, Equatable {
        case message
        case stage(String)
    }

    public var origin: Origin
    /// Stable, label-safe code such as `bad_base64` or `too_large`.
    public var code: String
    /// What exactly was wrong, for an operator reading the log.
    public var detail: String

    /// A stage's rejection.
    public init(stage: String, code: String, detail: String) {
        self.init(origin: .stage(stage), code: code, detail: detail)
    }

    public init(origin: Origin, code: String, detail: String) {
        self.origin = origin
        self.code = code
        self.detail = detail
    }

    /// A message that could not be parsed into a frame.
    public static func message(code: String, detail: String) -> Rejection {
        Rejection(origin: .message, code: code, detail: detail)
    }

    /// The label logs and metrics use: the stage's name, or `message`.
    public var stage: String {
        switch origin {
        case .message: "message"
        case .stage(let name): name
        }
    }

    public var description: String { "\(stage): \(code) (\(detail))" }
}

/// Why a stream ended, as sent to viewers in `stream_ended`.
public enum StreamEndReason: String, Sendable, Equatable, CaseIterable {
    case closed, timeout, errors, replaced, shutdown
    case nodeLost = "node_lost"
    /// The streamer's token expired and was not refreshed.
    case tokenExpired = "token_expired"
    /// The streamer's token (or its subject) was revoked.
    case tokenRevoked = "token_revoked"
    /// A camera the relay pulls (`"sources"`) went away or stopped sending; the relay keeps trying it.
    case sourceLost = "source_lost"
}

/// What a stage instance may know about the stream it serves.
public struct StageContext: Sendable {
    public let streamID: String
    public var logger: Logger
    /// Where `fan-out` delivers and whom `downscale` asks whether a `low`
    /// rendition is wanted.
    public let sink: any FrameSink

    public init(streamID: String, logger: Logger, sink: any FrameSink) {
        self.streamID = streamID
        self.logger = logger
        self.sink = sink
    }
}

/// The server's side of the `fan-out` stage: takes accepted frames and
/// delivers them to viewers without ever waiting on one.
public protocol FrameSink: Sendable {
    /// Hands over a frame; must return promptly and never block on a viewer.
    func publish(_ frame: Frame)
    /// The rungs of `ladder` (the stream's, as its `downscale` declares it)
    /// some viewer is being sent, full included when any viewer gets it:
    /// `downscale` makes these and no others.
    func wantedRenditions(streamID: String, ladder: RenditionLadder) -> RenditionSet
    /// A stage's stream-level event (`StageEvent`); must return promptly.
    func streamEvent(_ event: StageEvent, streamID: String)
    /// The state of `kind` the stream already has when a pipeline starts on
    /// it: a camera that reconnected, a reloaded config, a stream that moved
    /// here from another node. Nil when nothing was raised.
    func standingEvent(kind: String, streamID: String) -> StageEvent?
}

extension FrameSink {
    /// A sink that knows no viewers wants the frame as it came, and no smaller copy.
    public func wantedRenditions(streamID: String, ladder: RenditionLadder) -> RenditionSet { RenditionSet([0]) }

    /// A sink that keeps no stream state ignores events.
    public func streamEvent(_ event: StageEvent, streamID: String) {}

    /// …and knows of none.
    public func standingEvent(kind: String, streamID: String) -> StageEvent? { nil }
}
