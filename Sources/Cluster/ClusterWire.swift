import NIOCore
import Pipeline
import RESP

/// The Redis names a cluster of framepipe nodes shares, in one of two
/// spellings. On one Redis (or a Sentinel-watched pair): `framepipe:…`, one
/// Redis database per cluster (`redis://host/N` keeps clusters apart), and
/// plain pub/sub. On a Redis Cluster: what the scripts touch together (the
/// registry, its channel, the node keys, revocations, camera leases) carries
/// the hash tag `{framepipe}`, so it all lives in one slot where a script
/// may use it; each stream's frame channel is tagged with the stream id, so
/// its bytes stay on the shard that owns that slot; and channels are
/// sharded (`SPUBLISH`/`SSUBSCRIBE`), so no message crosses the cluster bus.
package struct ClusterKeys: Sendable {
    static let onOneRedis = ClusterKeys(sharded: false)
    static let onRedisCluster = ClusterKeys(sharded: true)

    /// True on a Redis Cluster.
    private let sharded: Bool
    private let control: String

    private init(sharded: Bool) {
        self.sharded = sharded
        control = sharded ? "{framepipe}" : "framepipe"
        publish = sharded ? "SPUBLISH" : "PUBLISH"
        // Stored, not computed: a node compares each message's channel with them.
        streams = control + ":streams"
        controlChannel = control + ":control"
        revoked = control + ":revoked"
        revocations = control + ":revocations"
        claimScript = Self.publishing(Self.claimSource, with: publish)
        startScript = Self.publishing(Self.startSource, with: publish)
        endScript = Self.publishing(Self.endSource, with: publish)
    }

    /// `PUBLISH`, or `SPUBLISH` on a Redis Cluster.
    package let publish: String

    /// Hash: stream id → "<owner node>\t<0|1 started>", the shared registry.
    package let streams: String
    /// Channel for claims, starts and ends; every node subscribes always.
    let controlChannel: String
    /// The channel carrying one stream's frames on one Redis; on a Redis
    /// Cluster the first of its `frameChannels`, the one a node that knows
    /// of no other (version 2) publishes and listens on.
    package func frames(_ streamID: String) -> String { sharded ? "framepipe:frames:{\(streamID)}" : "framepipe:frames:" + streamID }
    /// Every channel a stream's frames may take; a node with a viewer for
    /// it listens on all of them. On a Redis Cluster there are
    /// `frameChannelChoices`, each with a hash tag of its own (`{id}`,
    /// `{id|1}`, …: `|` is not in a stream id), so their slots fall on
    /// different shards and the owner publishes on the one whose shard is
    /// least used (`FramePlacement`).
    func frameChannels(_ streamID: String) -> [String] {
        guard sharded else { return [frames(streamID)] }
        return [frames(streamID)] + (1..<Self.frameChannelChoices).map { "framepipe:frames:{\(streamID)|\($0)}" }
    }
    /// Four: with three shards the chance that all four land on one is 1 in
    /// 27, and a node listening on a watched stream costs Redis four
    /// subscriptions, not one (no frame crosses the three it does not use).
    static let frameChannelChoices = 4
    /// A stream's frames have a choice of channels (on a Redis Cluster).
    var placesFrames: Bool { sharded }
    /// Whether `channel` is a stream's frame channel (no copy of its name: asked for every frame).
    func isFrameChannel(_ channel: String) -> Bool { channel.hasPrefix(Self.framesPrefix) }
    private static let framesPrefix = "framepipe:frames:"
    /// The stream a frame channel's name is of, nil for another channel.
    package func stream(ofFrameChannel channel: String) -> String? {
        guard isFrameChannel(channel) else { return nil }
        let id = channel.dropFirst(Self.framesPrefix.count)
        guard sharded else { return String(id) }
        guard id.hasPrefix("{"), id.hasSuffix("}") else { return nil }
        let tag = id.dropFirst().dropLast()
        guard let bar = tag.firstIndex(of: "|") else { return String(tag) }
        let choice = tag[tag.index(after: bar)...]
        guard let number = Int(choice), (1..<Self.frameChannelChoices).contains(number), String(number) == choice else { return nil }
        return String(tag[..<bar])
    }
    /// Channel of one node's own: the latest frames other nodes send it on
    /// request, so a new viewer's tile is never blank until the next frame.
    func replay(_ nodeID: String) -> String { sharded ? "framepipe:replay:{\(nodeID)}" : "framepipe:replay:" + nodeID }
    /// Hash: "jti:<id>" or "sub:<subject>" → the revocation as JSON; read whole on (re)connect.
    package let revoked: String
    /// Channel on which `framepipe revoke --redis` tells every node at once.
    package let revocations: String
    /// Key with a TTL, renewed by a live node's heartbeat; its value is the node's `nodeVersion`.
    func node(_ nodeID: String) -> String { control + ":node:" + nodeID }
    /// Key with a TTL: the node that pulls the camera of a stream (`"sources"`), renewed while it does.
    func source(_ streamID: String) -> String { control + ":source:" + streamID }

    /// The channels a node always listens on.
    func alwaysSubscribed(by nodeID: String) -> Set<String> { [controlChannel, revocations, replay(nodeID)] }

    /// A registry script that announces with `PUBLISH` in the source, with `command` instead.
    private static func publishing(_ source: String, with command: String) -> String {
        source.replacingOccurrences(of: "'PUBLISH'", with: "'\(command)'")
    }

    /// Takes a source's lease when it is free or already this node's (ARGV[1]),
    /// for ARGV[2] ms; returns the holder, this node or another.
    static let holdSourceScript = """
        local holder = redis.call('GET', KEYS[1])
        if holder == false or holder == ARGV[1] then
          redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
          return ARGV[1]
        end
        return holder
        """

    /// Gives a source's lease up, if it is still this node's (ARGV[1]).
    static let releaseSourceScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """

    /// What a node's key says it understands: "3", every one of a stream's
    /// `frameChannels`; "2", demand events; "1", an older node. Each
    /// version understands what the ones before it do.
    static let nodeVersion = "3"

    /// Whether every node's key (their values, from `nodeVersionsScript`) says it understands `version`.
    static func everyNode(_ versions: [RESPValue], understands version: Int) -> Bool {
        versions.allSatisfy { ($0.string.flatMap { Int($0) } ?? 1) >= version }
    }

    /// Every live node's key value (the pattern is ARGV[1]; KEYS[1], the
    /// registry, only says where to run it). KEYS, not SCAN: a cluster's
    /// database holds a handful of keys, read once a heartbeat; on a Redis
    /// Cluster the node keys all live in the registry's slot, so on the
    /// shard that runs the script.
    static let nodeVersionsScript = """
        local values = {}
        for _, key in ipairs(redis.call('KEYS', ARGV[1])) do values[#values + 1] = redis.call('GET', key) or '' end
        return values
        """

    /// The registry entry and its announcement change together (one script,
    /// so no node sees one without the other).
    let claimScript: String, startScript: String, endScript: String

    private static let claimSource = """
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '\\t' .. ARGV[3])
        redis.call('PUBLISH', KEYS[2], ARGV[4])
        return 1
        """
    /// Starts or ends a stream only if `ARGV[2]` still owns it: a node that
    /// was replaced (or declared lost) cannot undo the new owner's entry.
    private static let startSource = """
        local v = redis.call('HGET', KEYS[1], ARGV[1])
        if v and string.sub(v, 1, #ARGV[2] + 1) == ARGV[2] .. '\\t' then
          redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '\\t1')
          redis.call('PUBLISH', KEYS[2], ARGV[3])
          return 1
        end
        return 0
        """
    private static let endSource = """
        local v = redis.call('HGET', KEYS[1], ARGV[1])
        if v and string.sub(v, 1, #ARGV[2] + 1) == ARGV[2] .. '\\t' then
          redis.call('HDEL', KEYS[1], ARGV[1])
          redis.call('PUBLISH', KEYS[2], ARGV[3])
          return 1
        end
        return 0
        """

    /// A registry value, or nil if it is not one framepipe wrote.
    /// The registry and which of its owners (and `ARGV`'s) have a live
    /// heartbeat, read in one step. Read apart, a node that claimed its
    /// stream and then beat between the two reads looked alive without
    /// that stream, and the stream was ended here as "closed while away".
    static let snapshotScript = """
        local raw = redis.call('HGETALL', KEYS[1])
        local owners = {}
        for i = 2, #raw, 2 do owners[string.match(raw[i], '^[^\t]*')] = true end
        for i = 1, #ARGV do owners[ARGV[i]] = true end
        local alive = {}
        for owner, _ in pairs(owners) do
            if redis.call('EXISTS', KEYS[2] .. owner) == 1 then table.insert(alive, owner) end
        end
        return {raw, alive}
        """

    static func parseEntry(_ value: String) -> (owner: String, started: Bool)? {
        let parts = value.split(separator: "\t", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1] == "0" || parts[1] == "1" else { return nil }
        return (String(parts[0]), parts[1] == "1")
    }
}
