import Logging
import Pipeline

/// What a `RelayState` event asks of the world. The state decides and
/// returns these; `ViewerHub` carries them out, so every rule of the relay
/// can be tested by reading the list an event returns, without sockets.
///
/// Mailbox actions (`control`, `streamEnded`, `finish`) are the exception to
/// "after unlocking": the hub applies them inside the same critical section
/// as the state change that produced them. A frame's offer is checked
/// against its stream's `StreamGate`, which the hub updates under that
/// lock before those mailbox actions, so a `stream_ended` decided by one
/// thread can never be overtaken in a viewer's mailbox by a frame of the
/// same stream published by another. Everything else (encoding, logs,
/// metrics, the cluster, closing connections) happens after unlocking.
package enum RelayAction {
    /// Queue a control message for a viewer (lossless, in order).
    case control(viewer: String, text: String)
    /// Queue `stream_ended` for a viewer and forget its unsent frame of that stream.
    case streamEnded(viewer: String, stream: String, text: String)
    /// Let the viewer's writer flush what is queued, then close (shutdown).
    case finish(viewer: String)
    /// Encode the frame once per group of viewers sent the same bytes, then
    /// offer it to their mailboxes if `ticket` is still current.
    case deliver(Frame, to: FanOut, ticket: FrameTicket)
    /// Ask a streamer's connection to close.
    case closeSession(StreamSessionHandle, StreamEndReason)
    /// Send a streamer a control message (its `demand`).
    case tellStreamer(StreamSessionHandle, String)
    /// A viewer left the registry: finish its mailbox, count and log it.
    case viewerLeft(viewer: String, reason: ViewerLeaveReason, remaining: Int)
    /// Tell the other nodes.
    case cluster(ClusterNotice)
    case metric(RelayMetricEvent)
    /// Tell the event listener (the webhooks).
    case event(RelayEvent)
    case log(Logger.Level, Logger.Message, Logger.Metadata)
}

/// One viewer a frame goes to, and in which rendition. `handle` is the
/// hub's object for the viewer, carried through so the frame path needs no
/// lookup per viewer; the rules never look into it.
package struct FrameTarget: Equatable, Sendable {
    package let viewer: String
    package let rendition: RenditionKind
    /// The policy's frame-rate cap for this viewer and stream, if any.
    package var maxFPS: Double? = nil
    package var handle: (any ViewerHandle)? = nil

    package static func == (a: FrameTarget, b: FrameTarget) -> Bool {
        a.viewer == b.viewer && a.rendition == b.rendition && a.maxFPS == b.maxFPS
    }
}

/// Which holder of a stream a frame was accepted from: the frame is offered
/// only while that holder still serves the stream.
package struct FrameTicket: Equatable, Sendable {
    package enum Holder: Equatable, Sendable {
        case session(UInt64)
        case node(String)
    }
    package let stream: String
    package let holder: Holder
    /// Set when the stream's latest frame is sent again (a tile became
    /// visible): offered only while it is still the latest, so a viewer
    /// never gets it after a newer one.
    package var replayOf: UInt64?

    init(stream: String, holder: Holder, replayOf: UInt64? = nil) {
        self.stream = stream
        self.holder = holder
        self.replayOf = replayOf
    }
}

/// What the cluster hears from this node (see `ClusterLink`).
package enum ClusterNotice {
    case streamConnected(String, started: Bool)
    case streamStarted(String)
    case streamEnded(String, StreamEndReason)
    case frameAccepted(Frame)
    case interestChanged
    /// A local stream's health changed (a stage's event).
    case streamHealth(String, StageEvent)
    /// What this node's viewers need of another node's stream changed: its owner tells its camera.
    case demand(String, StreamDemand)
}

/// The counters the state's events move.
package enum RelayMetricEvent: Equatable {
    case frameAccepted(stream: String)
    case streamEnded(String)
    case viewerConnected
    case streamHealth(kind: String, state: String)
}

/// What the hub keeps for a viewer (its mailbox and writer), as the rules
/// hold it: an object they carry into `FrameTarget`s and never look into,
/// so `RelayState` does not know the hub's types.
package protocol ViewerHandle: AnyObject, Sendable {}
