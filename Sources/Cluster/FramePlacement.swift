/// Which of its frame channels each of this node's streams publishes on, on
/// a Redis Cluster. A channel lives on the shard that owns its hash slot;
/// with one channel per stream, where a stream's bytes went was the hash's
/// luck, and a run of 72 streams put 28 on one shard and 20 on another (its
/// Redis then did 1.6× an even share of the work). Every stream has a few
/// channels (`ClusterKeys.frameChannels`), every node that watches it
/// listens on all of them, and the owner publishes on the one whose shard
/// carries fewest of its streams so far, keeping it for the stream's life.
/// Each node evens out its own streams, so the cluster's sum is even too,
/// within a stream per node and shard.
struct FramePlacement {
    /// Stream → the channel chosen for it.
    private var chosen: [String: String] = [:]

    /// The stream's channel: the one chosen before, or of `candidates` the
    /// first whose shard (`shardOf`) carries fewest of the streams placed so
    /// far. A candidate whose shard is not known counts as the busiest, and
    /// when none is known the first is used and nothing is remembered, so
    /// the stream is placed once the shards are known.
    mutating func channel(for stream: String, among candidates: [String], shardOf: (String) -> String?) -> (channel: String, placedNow: Bool) {
        if let channel = chosen[stream] { return (channel, false) }
        let load = streamsPerShard(shardOf: shardOf)
        var best: (channel: String, load: Int)?
        for candidate in candidates {
            guard let shard = shardOf(candidate) else { continue }
            let carried = load[shard] ?? 0
            if carried < best?.load ?? .max { best = (candidate, carried) }
        }
        guard let best else { return (candidates[0], false) }
        chosen[stream] = best.channel
        return (best.channel, true)
    }

    /// The channel chosen for the stream, if it has been placed (asked for every frame).
    func chosenChannel(of stream: String) -> String? { chosen[stream] }

    /// The stream ended here: its channel no longer counts.
    mutating func forget(_ stream: String) {
        chosen[stream] = nil
    }

    /// How many of this node's streams each shard carries.
    func streamsPerShard(shardOf: (String) -> String?) -> [String: Int] {
        chosen.values.reduce(into: [:]) { load, channel in
            if let shard = shardOf(channel) { load[shard, default: 0] += 1 }
        }
    }
}
