import Pipeline

/// Something that happened to a stream or a viewer that a person should
/// hear of even when nobody is looking at the dashboard: the camera that
/// dies at 3 a.m. The webhooks post these.
///
/// Each is raised once, by the node that knows: a stream's start and end by
/// the node serving it, a lost node's streams by each node that saw it go
/// (the one that served them cannot say), a dropped viewer by its node.
package enum RelayEvent: Sendable, Equatable {
    case streamStarted(stream: String)
    case streamEnded(stream: String, reason: StreamEndReason, frames: Int)
    /// Silent past `--idle-warning` (it is closed with `timeout` later if it stays so).
    case streamIdle(stream: String, silentFor: Duration)
    /// Cut off by the relay or its link (not a viewer that closed, nor a shutdown).
    case viewerDropped(viewer: String, reason: ViewerLeaveReason)
    /// A stage's event changed the stream's state of one kind (`picture`: `frozen`, … `ok`).
    case streamHealth(stream: String, event: StageEvent)

    /// The event's name on the wire, as the webhook's `type` says it.
    package var type: String {
        switch self {
        case .streamStarted: "stream_started"
        case .streamEnded: "stream_ended"
        case .streamIdle: "stream_idle"
        case .viewerDropped: "viewer_dropped"
        case .streamHealth: "stream_health"
        }
    }
}

/// Who hears of `RelayEvent`s; it must return at once (the hub calls it on
/// the frame path and its event loops).
package protocol RelayEventListener: Sendable {
    func relayEvent(_ event: RelayEvent)
}

extension ViewerLeaveReason {
    /// True when the relay or the link ended the viewer, rather than the viewer itself or a shutdown.
    var isDrop: Bool { logLevel == .warning }
}
