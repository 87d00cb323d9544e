import Pipeline
import WireProtocol

/// What a viewer shows of one stream, from its `view` hints.
package struct StreamView: Equatable, Sendable {
    package var width: Int?
    package var height: Int?
    package var visible: Bool
    /// The most frames a second the viewer asked for (an MJPEG client's `?fps=`).
    package var maxFPS: Double?
    package init(width: Int? = nil, height: Int? = nil, visible: Bool = true, maxFPS: Double? = nil) {
        self.width = width
        self.height = height
        self.visible = visible
        self.maxFPS = maxFPS
    }
}

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
        var scope: StreamScope
        /// The token it connected with, for per-token limits.
        var tokenID: String?
        package var remoteAddress: String
        /// `compat=patient_id`: frames name the stream as `patient_id` too.
        package var namesPatient: Bool

        package init(format: ViewerFormat, streams: Set<String>? = nil, quality: QualityPreference = .auto,
                     scope: StreamScope = .all, tokenID: String? = nil, remoteAddress: String, namesPatient: Bool = false) {
            self.format = format
            self.namesPatient = namesPatient
            self.streams = streams
            self.quality = quality
            self.scope = scope
            self.tokenID = tokenID
            self.remoteAddress = remoteAddress
        }
    }

    package let id: String
    /// Counts up from 1 as viewers connect: the order they are listed and reviewed in.
    package let number: Int
    package let format: ViewerFormat
    let namesPatient: Bool
    let tokenID: String?
    /// A refresh may narrow it, never widen it.
    var scope: StreamScope
    package var streams: Set<String>?
    package var quality: QualityPreference
    /// Housekeeping's verdict from the mailbox's loss figures: the one truth
    /// `/api/viewers` and the logs read.
    var slowness = SlowViewerVerdict()
    /// What the viewer said it shows of each stream (`view`): drawn size
    /// and visibility. A stream it said nothing of is visible, size unknown.
    var views: [String: StreamView] = [:]
    /// Per stream: the rung the policy picked for it, and a frame-rate cap where it set one.
    var choices: [String: DeliveryChoice] = [:]
    var pingSentAt: ContinuousClock.Instant?
    /// The hub's side of the viewer (mailbox, writer), opaque to the rules.
    package var handle: (any ViewerHandle)?

    init(number: Int, wants: Wants) {
        self.number = number
        id = "v-\(number)"
        format = wants.format
        namesPatient = wants.namesPatient
        tokenID = wants.tokenID
        scope = wants.scope
        streams = wants.streams
        quality = wants.quality
    }

    /// The one test of whether a stream's id, events and frames reach this viewer.
    func watches(_ streamID: String) -> Bool { scope.allows(streamID) && (streams?.contains(streamID) ?? true) }

    /// Whether it shows `streamID` now: a hidden tile or tab gets no frames.
    func shows(_ streamID: String) -> Bool { views[streamID]?.visible ?? true }

    /// The rungs this viewer may be sent of a stream with `ladder`: its
    /// own `full` or `low` is never overridden by a policy.
    func allowedRungs(_ ladder: RenditionLadder) -> ClosedRange<Int> {
        let lowest = ladder.lowestRung
        switch quality {
        case .full: return 0...0
        case .low: return min(1, lowest)...lowest
        case .auto: return (ladder.fullForAuto ? 0 : min(1, lowest))...lowest
        }
    }

    /// The rung it is sent of a stream with `ladder`.
    package func rung(for streamID: String, ladder: RenditionLadder) -> Int {
        let allowed = allowedRungs(ladder)
        return min(max(choices[streamID]?.rung ?? allowed.lowerBound, allowed.lowerBound), allowed.upperBound)
    }
}
