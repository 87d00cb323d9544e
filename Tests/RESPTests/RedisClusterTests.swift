import NIOConcurrencyHelpers
import NIOCore
@testable import RESP
import TestFixtures
import Testing

/// What the client needs to know of a Redis Cluster: the slot of a key, the
/// shards and who owns what, and a node's redirections. Pure rules first,
/// then checked against a real cluster (three primaries with a replica each).
/// One real cluster at a time (six servers each, and a failover's CPU):
/// the suites below run in turn, beside the rest of the tests.
@Suite("Redis Cluster: slots, shards and redirections", .serialized, .timeLimit(.minutes(2)))
struct RedisClusterTests {
    /// A fresh cluster and a client of it (given every node, or the first
    /// only), closed and stopped after `body`, whether it passed or threw.
    static func withClusterClient(oneSeed: Bool = false,
                                  _ body: (RedisClusterGroup, RedisClusterClient) async throws -> Void) async throws {
        let cluster = try await RedisClusterGroup()
        let seeds = oneSeed ? [cluster.nodes[0].url] : cluster.nodes.map(\.url)
        do {
            let client = try await RedisClusterClient.connect(seeds: seeds, clientName: "test")
            defer { client.close() }
            try await body(cluster, client)
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }

    @Test func slotsAreCRC16XModemOfTheKeyOrItsHashTag() {
        #expect(RedisKeySlot.crc16(Array("123456789".utf8)[...]) == 0x31C3, "the XMODEM check value")
        // Examples from the Redis Cluster specification and redis-cli's CLUSTER KEYSLOT.
        #expect(RedisKeySlot.of("foo") == 12182)
        #expect(RedisKeySlot.of("bar") == 5061)
        #expect(RedisKeySlot.of("") == 0)
        #expect(RedisKeySlot.of("{user1000}.following") == RedisKeySlot.of("{user1000}.followers"))
        #expect(RedisKeySlot.of("{user1000}.following") == RedisKeySlot.of("user1000"))
        // An empty tag is no tag; only the first { and the } after it count.
        #expect(RedisKeySlot.of("foo{}{bar}") == RedisKeySlot.of("foo{}{bar}".utf8.map { $0 }))
        #expect(Array(RedisKeySlot.hashed(Array("foo{}{bar}".utf8))) == Array("foo{}{bar}".utf8))
        #expect(Array(RedisKeySlot.hashed(Array("foo{{bar}}zap".utf8))) == Array("{bar".utf8))
        #expect(Array(RedisKeySlot.hashed(Array("foo{bar}{zap}".utf8))) == Array("bar".utf8))
    }

    @Test func aShardsReplyIsReadIntoShardsAndAShardWithoutAPrimaryOwnsNothing() throws {
        /// A RESP2 map, as Redis 7 sends one: names and values in turn.
        func fields(_ pairs: KeyValuePairs<String, RESPValue>) -> RESPValue {
            .array(pairs.flatMap { [.bulk($0.key), $0.value] })
        }
        func node(_ id: String, _ port: Int64, _ role: String, _ health: String = "online") -> RESPValue {
            fields(["id": .bulk(id), "port": .integer(port), "ip": .bulk("127.0.0.1"), "endpoint": .bulk("127.0.0.1"), "role": .bulk(role),
                    "replication-offset": .integer(0), "health": .bulk(health)])
        }
        func shard(_ bounds: [Int64], _ nodes: [RESPValue]) -> RESPValue {
            fields(["slots": .array(bounds.map { .integer($0) }), "nodes": .array(nodes)])
        }
        let reply: RESPValue = .array([
            shard([0, 5460], [node("a", 7001, "master"), node("d", 7004, "replica")]),
            shard([5461, 10922], [node("b", 7002, "master"), node("e", 7005, "replica", "loading")]),
            shard([10923, 12000, 12001, 16383], [node("c", 7003, "master")]),
        ])
        let topology = try RedisClusterTopology(shardsReply: reply)
        #expect(topology.shards.count == 3 && topology.coversAllSlots)
        #expect(topology.shard(forSlot: 5461)?.primary.endpoint == .init(host: "127.0.0.1", port: 7002))
        #expect(topology.shard(forSlot: 5461)?.replicas.map(\.health) == ["loading"])
        #expect(topology.shard(forKey: "foo")?.primary.id == "c", "foo is slot 12182")
        // The third shard's primary failed and no replica took over yet: slots 10923-16383 have no owner.
        let orphaned: RESPValue = .array([reply.array![0], reply.array![1], shard([10923, 16383], [node("f", 7006, "replica")])])
        let partial = try RedisClusterTopology(shardsReply: orphaned)
        #expect(partial.shards.count == 2 && !partial.coversAllSlots && partial.shard(forSlot: 12182) == nil)
        // A node serving plain and TLS connections lists both ports; a TLS client names the TLS one.
        let both: RESPValue = .array([shard([0, 16383], [fields(["id": .bulk("a"), "port": .integer(7001), "tls-port": .integer(8001),
                                                                  "ip": .bulk("127.0.0.1"), "role": .bulk("master"), "health": .bulk("online")])])])
        #expect(try RedisClusterTopology(shardsReply: both).shards[0].primary.endpoint.port == 7001)
        #expect(try RedisClusterTopology(shardsReply: both, tls: true).shards[0].primary.endpoint.port == 8001)
        #expect(throws: RedisClusterTopology.Invalid.self) { try RedisClusterTopology(shardsReply: .array([.array([.bulk("slots")])])) }
        #expect(throws: RedisClusterTopology.Invalid.self) { try RedisClusterTopology(shardsReply: .array([shard([9, 20000], [])])) }
    }

    @Test func movedAndAskErrorsAreRedirectionsAndOtherErrorsAreNot() {
        let from = RedisURL.Endpoint(host: "10.0.0.1", port: 7000)
        #expect(RedisRedirection(.error("MOVED 3999 127.0.0.1:6381"), from: from) == .moved(slot: 3999, to: .init(host: "127.0.0.1", port: 6381)))
        #expect(RedisRedirection(.error("ASK 3999 127.0.0.1:6381"), from: from) == .ask(slot: 3999, to: .init(host: "127.0.0.1", port: 6381)))
        #expect(RedisRedirection(.error("MOVED 12 ?:7002"), from: from) == .moved(slot: 12, to: .init(host: "10.0.0.1", port: 7002)),
                "an unknown endpoint is the answering node's host")
        #expect(RedisRedirection(.error("MOVED 3999 ::1:6381"), from: from) == .moved(slot: 3999, to: .init(host: "::1", port: 6381)))
        #expect(RedisRedirection(.error("ERR unknown command"), from: from) == nil)
        #expect(RedisRedirection(.error("MOVED 16384 127.0.0.1:6381"), from: from) == nil, "no such slot")
        #expect(RedisRedirection(.simpleString("MOVED 1 127.0.0.1:1"), from: from) == nil)
    }

    /// The same rules against a real cluster: the slots it computes are
    /// the server's, the topology is the one `redis-cli` built, and a
    /// command sent to the wrong primary is redirected where the topology says.
    @Test func aRealClusterAgreesOnSlotsShardsAndRedirections() async throws {
        let cluster = try await RedisClusterGroup()
        let topology = try await cluster.topology()
        #expect(topology.shards.count == 3 && topology.coversAllSlots)
        #expect(topology.shards.allSatisfy { $0.replicas.count == 1 && $0.primary.health == "online" })
        #expect(Set(topology.shards.flatMap { [$0.primary.endpoint] + $0.replicas.map(\.endpoint) }) == Set(cluster.seeds))

        let connection = try await RedisConnection.connect(to: cluster.nodes[0].url, clientName: "test")
        defer { connection.close() }
        for key in ["framepipe:frames:bed-12", "framepipe:stream:{bed-12}", "{bed-12}.claims", "x", "", "ICU-7", "😀"] {
            let server = try await connection.run(RESPCommand("CLUSTER", "KEYSLOT", .string(key)))
            #expect(server.integer == Int64(RedisKeySlot.of(key)), "\(key)")
        }
        // Every node answers a key it does not own with MOVED to the owner the topology names.
        let key = "framepipe:frames:bed-12"
        let owner = try #require(topology.shard(forKey: key)?.primary.endpoint)
        for shard in topology.shards where shard.primary.endpoint != owner {
            let wrong = try await RedisConnection.connect(to: cluster.node(at: shard.primary.endpoint)!.url, clientName: "test")
            defer { wrong.close() }
            let reply = try await wrong.send(RESPCommand("SET", .string(key), "1")).get()
            #expect(RedisRedirection(reply, from: shard.primary.endpoint) == .moved(slot: RedisKeySlot.of(key), to: owner), "\(reply)")
        }
        let right = try await RedisConnection.connect(to: cluster.node(at: owner)!.url, clientName: "test")
        defer { right.close() }
        #expect(try await right.run(RESPCommand("SET", .string(key), "1")) == .simpleString("OK"))
        await cluster.stop()
    }
}

extension RedisClusterTests {
    /// The client against a real cluster, as it changes under it.
    @Suite("Redis Cluster client", .serialized, .timeLimit(.minutes(2)))
    struct RedisClusterClientTests {
        @Test func eachKeyGoesToItsShardFromOneSeedAndAMovedSlotIsFollowed() async throws {
            try await RedisClusterTests.withClusterClient(oneSeed: true) { cluster, client in
                // One seed is enough: the rest is learnt from it.
                let keys = (0..<60).map { "framepipe:test:\($0)" }
                for key in keys { #expect(try await client.run(RESPCommand("SET", .string(key), .string(key)), key: key) == .simpleString("OK")) }
                let topology = client.topology
                for key in keys {
                    let owner = try #require(topology.shard(forKey: key)?.primary.endpoint)
                    let direct = try await cluster.node(at: owner)!.command("GET", key)
                    #expect(direct.string == key, "\(key) is on the primary that owns slot \(RedisKeySlot.of(key))")
                }
                #expect(client.topologyRefreshes == 0, "nothing moved: no redirection")

                // The slot moves to another shard (a resharding): the client's next command is told MOVED and follows.
                let key = keys[0]
                let from = try #require(topology.shard(forKey: key)), to = try #require(topology.shards.first { $0 != from })
                try await cluster.migrate(slot: RedisKeySlot.of(key), from: from.primary, to: to.primary, finish: true)
                #expect(try await client.run(RESPCommand("GET", .string(key)), key: key).string == key)
                #expect(client.topologyRefreshes == 1)
                #expect(try client.primary(forKey: key) == to.primary.endpoint)
            }
        }

        @Test func aSlotBeingMigratedIsAskedWhereItsKeyAlreadyIs() async throws {
            try await RedisClusterTests.withClusterClient { cluster, client in
                let key = "{bed-12}.claims"
                _ = try await client.run(RESPCommand("SET", .string(key), "node-a"), key: key)
                let topology = client.topology
                let from = try #require(topology.shard(forKey: key)), to = try #require(topology.shards.first { $0 != from })
                // Half-way: the key has moved, the slot still belongs to `from`, which answers ASK.
                try await cluster.migrate(slot: RedisKeySlot.of(key), from: from.primary, to: to.primary, finish: false)
                #expect(try await client.run(RESPCommand("GET", .string(key)), key: key).string == "node-a")
                #expect(client.topologyRefreshes == 0, "ASK is for one command: the shards are not read again")
                #expect(try client.primary(forKey: key) == from.primary.endpoint)
            }
        }

        @Test func aKilledPrimarysReplicaTakesOverAndTheClientFindsIt() async throws {
            try await RedisClusterTests.withClusterClient { cluster, client in
                let key = "framepipe:node:node-a"
                _ = try await client.run(RESPCommand("SET", .string(key), "1"), key: key)
                let shard = try #require(client.topology.shard(forKey: key))
                cluster.node(at: shard.primary.endpoint)!.kill9()
                let replica = try #require(shard.replicas.first?.endpoint)
                try await cluster.waitUntilPrimary(replica, timeout: .seconds(30))
                // Replication is asynchronous: the key may or may not have reached the replica; the write goes to the new primary.
                #expect(try await client.run(RESPCommand("SET", .string(key), "2"), key: key) == .simpleString("OK"))
                #expect(try client.primary(forKey: key) == replica)
                #expect(try await cluster.node(at: replica)!.command("GET", key).string == "2")
            }
        }
    }

    /// Sharded pub/sub: each channel subscribed on the shard that owns its
    /// slot, and found again where the cluster moves it.
    @Suite("Redis Cluster sharded subscriptions", .serialized, .timeLimit(.minutes(2)))
    struct RedisShardedSubscriberTests {
        final class Received: Sendable {
            let messages = NIOLockedValueBox<[String]>([])
            let changes = ChangeSignal()
            func has(_ text: String) -> Bool { messages.withLockedValue { $0.contains(text) } }
        }

        static func subscriber(_ client: RedisClusterClient, _ received: Received) -> RedisShardedSubscriber {
            RedisShardedSubscriber(client: client, clientName: "test-sub", onPlacement: { _ in received.changes.changed() }) { channel, payload in
                received.messages.withLockedValue { $0.append("\(channel) \(String(buffer: payload))") }
                received.changes.changed()
            }
        }

        static let channels = ["framepipe:frames:{bed-1}", "framepipe:frames:{bed-2}", "framepipe:frames:{icu-7}", "framepipe:frames:{ward-3}"]

        /// A cluster, a client and a subscriber to every channel, confirmed by the shards.
        static func withAllSubscribed(
            _ body: (RedisClusterGroup, RedisClusterClient, Received, RedisShardedSubscriber) async throws -> Void
        ) async throws {
            try await RedisClusterTests.withClusterClient { cluster, client in
                let received = Received()
                let subscriber = Self.subscriber(client, received)
                defer { subscriber.close() }
                await subscriber.set(Set(Self.channels))
                try await Self.confirmed(subscriber, received, Set(Self.channels))
                try await body(cluster, client, received, subscriber)
            }
        }

        /// Until the shards have confirmed exactly `channels`.
        static func confirmed(_ subscriber: RedisShardedSubscriber, _ received: Received, _ channels: Set<String>) async throws {
            let done = await received.changes.wait(timeout: .seconds(5)) {
                subscriber.placement.values.reduce(into: Set<String>()) { $0.formUnion($1) } == channels
            }
            #expect(done, "placement: \(subscriber.placement)")
        }

        /// Publishes on the channel's shard and waits until the subscriber has the message.
        static func roundTrip(_ client: RedisClusterClient, _ received: Received, _ channel: String, _ text: String) async throws {
            let receivers = try await client.run(RESPCommand("SPUBLISH", .string(channel), .string(text)), key: channel)
            #expect(receivers == .integer(1), "\(channel): \(receivers)")
            let got = await received.changes.wait(timeout: .seconds(5)) { received.has("\(channel) \(text)") }
            #expect(got, "\(channel) \(text) never arrived")
        }

        @Test func eachChannelIsSubscribedOnItsOwnShardOnly() async throws {
            try await Self.withAllSubscribed { cluster, client, received, subscriber in
                let topology = client.topology
                for channel in Self.channels {
                    let owner = try #require(topology.shard(forKey: channel)?.primary.endpoint)
                    #expect(subscriber.placement[owner]?.contains(channel) == true)
                    let counted = try await cluster.node(at: owner)!.command(["PUBSUB", "SHARDNUMSUB", channel])
                    #expect(counted.array?.last == .integer(1), "\(channel) on its owner: \(counted)")
                    try await Self.roundTrip(client, received, channel, "hello")
                }
                // Unwanted channels are left: their shards confirm it, and a message finds nobody.
                await subscriber.set([Self.channels[0]])
                try await Self.confirmed(subscriber, received, [Self.channels[0]])
                #expect(subscriber.placement == [try #require(topology.shard(forKey: Self.channels[0])?.primary.endpoint): [Self.channels[0]]])
                let left = try await client.run(RESPCommand("SPUBLISH", .string(Self.channels[1]), "nobody"), key: Self.channels[1])
                #expect(left == .integer(0))
            }
        }

        @Test func aChannelWhoseSlotMovesIsSubscribedAgainWhereItNowLives() async throws {
            try await Self.withAllSubscribed { cluster, client, received, subscriber in
                let channel = Self.channels[0]
                let topology = client.topology
                let from = try #require(topology.shard(forKey: channel)), to = try #require(topology.shards.first { $0 != from })
                try await cluster.migrate(slot: RedisKeySlot.of(channel), from: from.primary, to: to.primary, finish: true)
                // The old owner ends the subscription (a sunsubscribe not asked for); the subscriber places it anew.
                let moved = await received.changes.wait(timeout: .seconds(10)) { subscriber.placement[to.primary.endpoint]?.contains(channel) == true }
                #expect(moved, "placement: \(subscriber.placement)")
                #expect(subscriber.resyncs >= 1)
                try await Self.roundTrip(client, received, channel, "after the move")
            }
        }

        @Test func aKilledPrimarysChannelsAreSubscribedOnItsPromotedReplica() async throws {
            try await Self.withAllSubscribed { cluster, client, received, subscriber in
                let channel = Self.channels[2]
                let shard = try #require(client.topology.shard(forKey: channel))
                let replica = try #require(shard.replicas.first?.endpoint)
                cluster.node(at: shard.primary.endpoint)!.kill9()
                // The connection drops; the subscriber retries with backoff until the cluster has promoted the replica.
                let moved = await received.changes.wait(timeout: .seconds(30)) { subscriber.placement[replica]?.contains(channel) == true }
                #expect(moved, "placement: \(subscriber.placement)")
                try await Self.roundTrip(client, received, channel, "after the failover")
                // The other shards' channels never moved.
                for other in Self.channels where client.topology.shard(forKey: other)?.primary.endpoint != replica {
                    try await Self.roundTrip(client, received, other, "still here")
                }
            }
        }
    }
}

extension RESPValue {
    static func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }
}
