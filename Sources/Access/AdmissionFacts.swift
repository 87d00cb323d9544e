/// What the upgrade gate asks of the relay to refuse with an HTTP status
/// before an upgrade: how many streams and viewers it has, and which
/// streams it pulls itself. Facts, not the relay, so `Access` does not
/// depend on the core (`RelayAdmissionFacts` in `FramepipeServer` answers
/// from the hub and the pipelines file). The count limits are held again
/// where a stream or viewer is added (`CountLimits`): upgrades that arrive
/// together all pass a check made before any of them is added.
package protocol AdmissionFacts: Sendable {
    func counts(forStream streamID: String?, token tokenID: String?) -> AdmissionCounts
    /// Where the relay pulls `streamID` from, if it pulls it itself (`"sources"` in the pipelines file).
    func pulledSource(of streamID: String) -> String?
}

/// This node's live streams and viewers, and what the limits compare with them.
package struct AdmissionCounts: Sendable, Equatable {
    /// This node's streamers (other nodes' streams not counted).
    package var streams: Int
    /// The stream asked for is live here: a new streamer for it replaces the old one.
    var streamIsLive: Bool
    package var viewers: Int
    /// Viewers connected with the token asking.
    var tokenViewers: Int

    package init(streams: Int, streamIsLive: Bool, viewers: Int, tokenViewers: Int) {
        self.streams = streams
        self.streamIsLive = streamIsLive
        self.viewers = viewers
        self.tokenViewers = tokenViewers
    }
}
