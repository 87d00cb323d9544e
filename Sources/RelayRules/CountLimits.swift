/// The relay's count limits (streams, viewers, viewers per token), checked
/// where a stream or viewer is added, under the hub's lock, in the same
/// critical section that adds it. The upgrade gate checks them too, to
/// refuse with an HTTP status before the upgrade; but upgrades that arrive
/// together all pass a check made before any of them is added, so the gate
/// alone let a burst through.
package struct CountLimits: Sendable, Equatable {
    /// 0: no limit.
    var maxStreams = 0
    var maxViewers = 0
    var maxViewersPerToken = 0

    package init(maxStreams: Int = 0, maxViewers: Int = 0, maxViewersPerToken: Int = 0) {
        self.maxStreams = maxStreams
        self.maxViewers = maxViewers
        self.maxViewersPerToken = maxViewersPerToken
    }
}

/// A stream or viewer refused because a count limit is reached: the
/// metric's `limit` label, and the sentence the client is told.
package struct LimitRefusal: Error, Sendable, Equatable {
    package let limit: String
    package let reason: String
}

extension RelayState {
    /// Why one more viewer (with that token) may not be added, or nil.
    package func refusal(forViewerWithToken tokenID: String?) -> LimitRefusal? {
        if countLimits.maxViewers > 0, viewers.count >= countLimits.maxViewers {
            return LimitRefusal(limit: "viewers", reason: "the relay has its maximum of \(countLimits.maxViewers) viewers")
        }
        if let tokenID, countLimits.maxViewersPerToken > 0,
           viewers.values.count(where: { $0.tokenID == tokenID }) >= countLimits.maxViewersPerToken {
            return LimitRefusal(limit: "viewers_per_token", reason: "this token already has \(countLimits.maxViewersPerToken) viewers connected")
        }
        return nil
    }

    /// Why a streamer for `id` may not connect, or nil: a stream already
    /// live here is a replacement and always may.
    package func refusal(forStream id: String) -> LimitRefusal? {
        guard countLimits.maxStreams > 0, streams[id]?.isLocal != true else { return nil }
        let live = streams.values.count(where: \.isLocal)
        return live >= countLimits.maxStreams
            ? LimitRefusal(limit: "streams", reason: "the relay has its maximum of \(countLimits.maxStreams) live streams") : nil
    }
}
