/// Which shard of a Redis Cluster owns which hash slots, and where its
/// primary and replicas listen: what `CLUSTER SHARDS` (Redis 7) answers,
/// read once at start and again after a `MOVED`, a failover or a
/// resharding.
public struct RedisClusterTopology: Sendable, Equatable {
    public struct Node: Sendable, Equatable {
        public var id: String
        public var endpoint: RedisURL.Endpoint
        /// "online", "failed" or "loading", as the cluster judges it.
        public var health: String
    }

    public struct Shard: Sendable, Equatable {
        public var slots: [ClosedRange<Int>]
        public var primary: Node
        public var replicas: [Node]
    }

    public var shards: [Shard]

    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public let reason: String
        public var description: String { "CLUSTER SHARDS reply: \(reason)" }
    }

    public init(shards: [Shard]) {
        self.shards = shards
    }

    /// Reads a `CLUSTER SHARDS` reply. A shard without a primary (its
    /// primary failed and no replica was promoted yet) is left out: its
    /// slots have no owner until the cluster has one. A node that serves
    /// both plain and TLS connections lists both ports: `tls` picks which
    /// one the endpoints name.
    public init(shardsReply reply: RESPValue, tls: Bool = false) throws(Invalid) {
        guard let entries = reply.array else { throw Invalid(reason: "not an array: \(reply)") }
        var shards: [Shard] = []
        for entry in entries {
            let fields = try Self.fields(entry)
            guard let flat = fields["slots"]?.array else { throw Invalid(reason: "a shard without slots") }
            guard flat.count % 2 == 0 else { throw Invalid(reason: "an odd number of slot bounds") }
            var slots: [ClosedRange<Int>] = []
            for i in stride(from: 0, to: flat.count, by: 2) {
                guard let low = flat[i].integer, let high = flat[i + 1].integer, 0 <= low, low <= high, high < RedisKeySlot.count
                else { throw Invalid(reason: "slot bounds \(flat[i]) \(flat[i + 1])") }
                slots.append(Int(low)...Int(high))
            }
            guard let nodes = fields["nodes"]?.array else { throw Invalid(reason: "a shard without nodes") }
            var masters: [Node] = []
            var replicas: [Node] = []
            for value in nodes {
                let node = try Self.fields(value)
                let ports = (plain: node["port"]?.integer, tls: node["tls-port"]?.integer)
                guard let id = node["id"]?.string, let port = tls ? ports.tls ?? ports.plain : ports.plain ?? ports.tls,
                      let host = node["ip"]?.string ?? node["endpoint"]?.string
                else { throw Invalid(reason: "a node without id, ip or port") }
                let parsed = Node(id: id, endpoint: .init(host: host, port: Int(port)), health: node["health"]?.string ?? "online")
                if node["role"]?.string == "master" { masters.append(parsed) } else { replicas.append(parsed) }
            }
            // Just after a failover the failed primary may still be listed as a master: the live one owns the slots.
            let primary = masters.first { $0.health == "online" } ?? masters.first { $0.health != "fail" && $0.health != "failed" }
            replicas += masters.filter { $0 != primary }
            if let primary, !slots.isEmpty { shards.append(Shard(slots: slots, primary: primary, replicas: replicas)) }
        }
        self.shards = shards
    }

    /// A RESP2 map: an array of alternating names and values.
    private static func fields(_ value: RESPValue) throws(Invalid) -> [String: RESPValue] {
        guard let flat = value.array, flat.count % 2 == 0 else { throw Invalid(reason: "not a list of names and values: \(value)") }
        var fields: [String: RESPValue] = [:]
        for i in stride(from: 0, to: flat.count, by: 2) {
            guard let name = flat[i].string else { throw Invalid(reason: "a field name that is not text: \(flat[i])") }
            fields[name] = flat[i + 1]
        }
        return fields
    }

    /// The shard that owns `slot`, if any does.
    public func shard(forSlot slot: Int) -> Shard? {
        shards.first { $0.slots.contains { $0.contains(slot) } }
    }

    /// The shard that owns `key`'s slot.
    public func shard(forKey key: String) -> Shard? {
        shard(forSlot: RedisKeySlot.of(key))
    }

    /// Every slot has a shard: the cluster can serve any key.
    public var coversAllSlots: Bool {
        let ranges = shards.flatMap(\.slots).sorted { $0.lowerBound < $1.lowerBound }
        var next = 0
        for range in ranges {
            guard range.lowerBound <= next else { return false }
            next = max(next, range.upperBound + 1)
        }
        return next == RedisKeySlot.count
    }
}

/// A cluster node's answer that a key lives elsewhere: `MOVED` (the slot
/// has a new owner: read the topology again) or `ASK` (the slot is being
/// migrated: ask that node once, after `ASKING`).
public enum RedisRedirection: Sendable, Equatable {
    case moved(slot: Int, to: RedisURL.Endpoint)
    case ask(slot: Int, to: RedisURL.Endpoint)

    /// Reads a `-MOVED 3999 127.0.0.1:6381` or `-ASK …` error; nil for any other.
    /// `from`: the node that answered, whose host stands in for an unknown one (`?:6381`).
    public init?(_ reply: RESPValue, from: RedisURL.Endpoint) {
        guard case .error(let text) = reply else { return nil }
        let parts = text.split(separator: " ")
        guard parts.count == 3, let slot = Int(parts[1]), (0..<RedisKeySlot.count).contains(slot),
              let colon = parts[2].lastIndex(of: ":"), let port = Int(parts[2][parts[2].index(after: colon)...])
        else { return nil }
        var host = String(parts[2][..<colon])
        if host.isEmpty || host == "?" { host = from.host }
        let endpoint = RedisURL.Endpoint(host: host, port: port)
        switch parts[0] {
        case "MOVED": self = .moved(slot: slot, to: endpoint)
        case "ASK": self = .ask(slot: slot, to: endpoint)
        default: return nil
        }
    }
}
