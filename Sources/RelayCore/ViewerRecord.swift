import WireProtocol

/// A connected viewer as the relay's rules see it: what it asked for, what
/// its token allows, and the verdicts about it. Its mailbox and socket are
/// the hub's (`ViewerHub.Viewer`).
package struct ViewerRecord {
    /// What a viewer asks for when it connects.
    package struct Wants {
        package var format: ViewerFormat
        package var streams: Set<String>?
        package var quality: QualityPreference
        /// What its token lets it see (everything when auth is off).
        package var scope: StreamScope
        /// The token it connected with, for per-token limits.
        package var tokenID: String?
        package var remoteAddress: String

        package init(format: ViewerFormat, streams: Set<String>? = nil, quality: QualityPreference = .auto,
                     scope: StreamScope = .all, tokenID: String? = nil, remoteAddress: String) {
            self.format = format
            self.streams = streams
            self.quality = quality
            self.scope = scope
            self.tokenID = tokenID
            self.remoteAddress = remoteAddress
        }
    }

    package let id: String
    package let format: ViewerFormat
    package let tokenID: String?
    /// A refresh may narrow it, never widen it.
    package var scope: StreamScope
    package var streams: Set<String>?
    package var quality: QualityPreference
    /// Housekeeping's verdict from the mailbox's loss figures: the one truth
    /// the `low` rendition, `/api/viewers` and the logs read.
    package var slowness = SlowViewerVerdict()
    package var pingSentAt: ContinuousClock.Instant?
    /// The hub's side of the viewer (mailbox, writer); opaque to the rules.
    package var delivery: ViewerHub.Viewer?

    init(id: String, wants: Wants) {
        self.id = id
        format = wants.format
        tokenID = wants.tokenID
        scope = wants.scope
        streams = wants.streams
        quality = wants.quality
    }

    /// The one test of whether a stream's id, events and frames reach this viewer.
    package func watches(_ streamID: String) -> Bool { scope.allows(streamID) && (streams?.contains(streamID) ?? true) }

    package var wantsLow: Bool {
        switch quality {
        case .low: true
        case .full: false
        case .auto: slowness.slow
        }
    }

    /// v-2 before v-10: the order viewers connected in.
    static func connectionOrder(_ a: String, _ b: String) -> Bool { a.count == b.count ? a < b : a.count < b.count }
}
