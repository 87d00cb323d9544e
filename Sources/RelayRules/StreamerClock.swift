/// A streamer's clock as the relay's clock sees it, so a frame's capture
/// time (`timestamp`, the sender's clock) can be put on the relay's clock
/// (`captured_at`) and a picture's age counted from the lens, not from the
/// moment the relay got it.
///
/// The relay pings with its time (`server_time`); the streamer answers
/// with that time and its own (`client_time`). If the pong arrived at R,
/// the streamer read its clock somewhere in [S, R]: the offset is
/// (S + R) / 2 − client_time, off by at most half the round trip. The
/// sample with the shortest round trip among the recent ones wins (NTP's
/// rule), since a queue on a slow uplink inflates the others; old samples
/// are forgotten so a drifting clock is followed. Plain value: all times
/// come in as arguments (ms since the epoch, the relay's clock).
package struct StreamerClock: Equatable, Sendable {
    struct Sample: Equatable {
        var offset: Int64
        var roundTrip: Int64
        var at: Int64
    }

    private var samples: [Sample] = []
    /// How many samples are weighed, and for how long one counts.
    static let keep = 8
    static let maxAgeMilliseconds: Int64 = 120_000

    package init() {}

    /// One ping's answer. False, and nothing learnt, when it cannot be an
    /// answer to a ping sent by this relay (a time in the future, or a
    /// round trip over a minute).
    @discardableResult
    package mutating func record(serverSent: Int64, clientTime: Int64, serverReceived: Int64) -> Bool {
        let roundTrip = serverReceived - serverSent
        guard roundTrip >= 0, roundTrip <= 60_000 else { return false }
        let offset = serverSent + roundTrip / 2 - clientTime
        samples.removeAll { serverReceived - $0.at > Self.maxAgeMilliseconds }
        samples.append(Sample(offset: offset, roundTrip: roundTrip, at: serverReceived))
        if samples.count > Self.keep { samples.removeFirst(samples.count - Self.keep) }
        return true
    }

    /// The shortest round trip among the recent samples, the newest on a tie.
    private var best: Sample? { samples.min { ($0.roundTrip, -$0.at) < ($1.roundTrip, -$1.at) } }

    /// Add to the streamer's time to get the relay's (ms); nil until a pong with times came.
    package var offset: Int64? { best?.offset }

    /// The round trip of the sample the offset comes from: its uncertainty is half that.
    package var roundTrip: Int64? { best?.roundTrip }

    /// When a frame stamped `timestamp` by the streamer was captured, on the
    /// relay's clock; never after it was received (an estimate a few ms
    /// fast must not make a picture younger than the moment it arrived).
    package func captureTime(of timestamp: Int64, receivedAt: Int64) -> Int64? {
        offset.map { min(receivedAt, timestamp + $0) }
    }
}
