import NIOCore
import Pipeline

/// The Redis names a cluster of framepipe nodes shares. One Redis database
/// serves one cluster; `redis://host/N` keeps clusters apart.
package enum ClusterKeys {
    /// Hash: stream id → "<owner node>\t<0|1 started>", the shared registry.
    package static let streams = "framepipe:streams"
    /// Channel for claims, starts and ends; every node subscribes always.
    package static let control = "framepipe:control"
    /// Channel carrying one stream's frames; subscribed while a node has a viewer for it.
    package static func frames(_ streamID: String) -> String { "framepipe:frames:" + streamID }
    package static let framesPrefix = "framepipe:frames:"
    /// Channel of one node's own: the latest frames other nodes send it on
    /// request, so a new viewer's tile is never blank until the next frame.
    package static func replay(_ nodeID: String) -> String { "framepipe:replay:" + nodeID }
    /// Hash: "jti:<id>" or "sub:<subject>" → the revocation as JSON; read whole on (re)connect.
    package static let revoked = "framepipe:revoked"
    /// Channel on which `framepipe revoke --redis` tells every node at once.
    package static let revocations = "framepipe:revocations"
    /// Key with a TTL, renewed by a live node's heartbeat; its value is the node's `nodeVersion`.
    package static func node(_ nodeID: String) -> String { "framepipe:node:" + nodeID }

    /// Key with a TTL: the node that pulls the camera of a stream (`"sources"`), renewed while it does.
    package static func source(_ streamID: String) -> String { "framepipe:source:" + streamID }

    /// Takes a source's lease when it is free or already this node's (ARGV[1]),
    /// for ARGV[2] ms; returns the holder, this node or another.
    package static let holdSourceScript = """
        local holder = redis.call('GET', KEYS[1])
        if holder == false or holder == ARGV[1] then
          redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
          return ARGV[1]
        end
        return holder
        """

    /// Gives a source's lease up, if it is still this node's (ARGV[1]).
    package static let releaseSourceScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """

    /// What a node's key says it understands: "2", demand events; "1", an older node.
    package static let nodeVersion = "2"

    /// Every live node's key value (the pattern is ARGV[1]). KEYS, not SCAN:
    /// a cluster's database holds a handful of keys, read once a heartbeat.
    package static let nodeVersionsScript = """
        local values = {}
        for _, key in ipairs(redis.call('KEYS', ARGV[1])) do values[#values + 1] = redis.call('GET', key) or '' end
        return values
        """

    /// The registry entry and its announcement change together (one script,
    /// so no node sees one without the other).
    package static let claimScript = """
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '\\t' .. ARGV[3])
        redis.call('PUBLISH', KEYS[2], ARGV[4])
        return 1
        """
    /// Starts or ends a stream only if `ARGV[2]` still owns it: a node that
    /// was replaced (or declared lost) cannot undo the new owner's entry.
    package static let startScript = """
        local v = redis.call('HGET', KEYS[1], ARGV[1])
        if v and string.sub(v, 1, #ARGV[2] + 1) == ARGV[2] .. '\\t' then
          redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '\\t1')
          redis.call('PUBLISH', KEYS[2], ARGV[3])
          return 1
        end
        return 0
        """
    package static let endScript = """
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
    package static let snapshotScript = """
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

    package static func parseEntry(_ value: String) -> (owner: String, started: Bool)? {
        let parts = value.split(separator: "\t", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1] == "0" || parts[1] == "1" else { return nil }
        return (String(parts[0]), parts[1] == "1")
    }
}
