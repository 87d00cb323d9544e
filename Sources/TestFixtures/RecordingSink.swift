import Logging
import Pipeline
import Synchronization

/// An in-memory `FrameSink` that keeps what it is given, for tests.
public final class RecordingSink: FrameSink {
    private let state = Mutex<(frames: [Frame], wantsLow: Bool, wanted: RenditionSet?, events: [StageEvent])>(([], false, nil, []))
    private let standing: [StageEvent]

    /// `wanted`: the rungs it says viewers are sent; without it, rung 1 while
    /// `wantsLow`. `standing`: the states the stream had before the stage started.
    public init(wantsLow: Bool = false, wanted: RenditionSet? = nil, standing: [StageEvent] = []) {
        self.standing = standing
        state.withLock { $0.wantsLow = wantsLow; $0.wanted = wanted }
    }

    public func publish(_ frame: Frame) { state.withLock { $0.frames.append(frame) } }
    public func wantedRenditions(streamID: String, ladder: RenditionLadder) -> RenditionSet {
        state.withLock { $0.wanted ?? ($0.wantsLow ? RenditionSet([0, 1]) : RenditionSet([0])) }
    }
    public func setWantsLow(_ value: Bool) { state.withLock { $0.wantsLow = value } }
    public var frames: [Frame] { state.withLock { $0.frames } }
    public func streamEvent(_ event: StageEvent, streamID: String) { state.withLock { $0.events.append(event) } }
    public func standingEvent(kind: String, streamID: String) -> StageEvent? { standing.last { $0.kind == kind } }
    /// The stage events raised, in order.
    public var events: [StageEvent] { state.withLock { $0.events } }
}

extension StageContext {
    public static func test(_ sink: any FrameSink = RecordingSink(), stream: String = "S-1") -> StageContext {
        StageContext(streamID: stream, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }, sink: sink)
    }
}
