import Foundation

/// A condition of the whole stream that a stage noticed, such as a
/// picture that stopped changing, and later its clearing.
///
/// It exists because some failures are not in any one frame: every JPEG of
/// a hung encoder is valid, yet the tile is useless. A stage raises the
/// event through its context (`context.raise`); the relay tells viewers
/// (`stream_health`), keeps the current state per kind for late viewers
/// and the API, counts it, and posts it to webhooks. Raising the state a
/// kind already has changes nothing, so a stage may raise on every check.
public struct StageEvent: Sendable, Equatable {
    /// The state that means "nothing wrong": raising it clears the kind.
    public static let ok = "ok"

    /// What is judged (`picture`): one current state per kind and stream.
    public let kind: String
    /// `ok`, or what is wrong (`frozen`, `dark`, `covered`).
    public let state: String
    /// When the condition began (for `ok`: when the stream recovered).
    public let since: Date
    /// Figures behind the judgement, sent along as they are (`mean_luma`, …).
    public let details: [(key: String, value: JSONValue)]

    public init(kind: String, state: String, since: Date, details: [(key: String, value: JSONValue)] = []) {
        self.kind = kind
        self.state = state
        self.since = since
        self.details = details
    }

    public var isOK: Bool { state == Self.ok }

    public static func == (a: StageEvent, b: StageEvent) -> Bool {
        a.kind == b.kind && a.state == b.state && a.since == b.since && JSONValue.object(a.details) == JSONValue.object(b.details)
    }
}

extension StageContext {
    /// Raises (or, with state `ok`, clears) a stream-level event.
    public func raise(_ event: StageEvent) {
        sink.streamEvent(event, streamID: streamID)
    }

    /// What the stream's state of `kind` is as this stage starts. A stage
    /// that raises a kind starts from it: a new stage instance (a camera
    /// that reconnected, a reload) that assumed `ok` would never clear a
    /// state its predecessor raised.
    public func standing(kind: String) -> StageEvent? {
        sink.standingEvent(kind: kind, streamID: streamID)
    }
}
