import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// Commands to a Redis Cluster, each sent straight to the primary that owns
/// its key's slot: the client reads the cluster's shards (`CLUSTER SHARDS`)
/// from any node it is given, keeps one connection per primary it has
/// needed, and follows the cluster's redirections: after a `MOVED` (the slot
/// has a new owner: a failover or a resharding) it reads the shards again
/// and sends the command there; after an `ASK` (the slot is being migrated)
/// it asks the node named, once, after `ASKING`.
public final class RedisClusterClient: Sendable {
    /// The nodes it was given, asked in turn for the shards; and the login, TLS and database (0) they share.
    public let seeds: [RedisURL]
    private let clientName: String
    /// How every node is reached: TLS (`rediss+cluster://`), and on which event loops.
    public let tls: TLSConfiguration?
    public let group: any EventLoopGroup
    private let writeBufferWaterMark: ChannelOptions.Types.WriteBufferWaterMark?

    private struct State {
        var topology: RedisClusterTopology
        var connections: [RedisURL.Endpoint: RedisConnection] = [:]
        var refreshes = 0
    }

    private let state: NIOLockedValueBox<State>
    /// One read of the shards at a time, however many commands were redirected.
    private let refreshing = SingleFlight()

    /// How many redirections one command follows before it gives up (a cluster that keeps moving a slot).
    public static let maxRedirections = 5

    public struct Unreachable: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    private init(seeds: [RedisURL], clientName: String, tls: TLSConfiguration?, group: any EventLoopGroup,
                 writeBufferWaterMark: ChannelOptions.Types.WriteBufferWaterMark?, topology: RedisClusterTopology) {
        self.seeds = seeds
        self.clientName = clientName
        self.tls = tls
        self.group = group
        self.writeBufferWaterMark = writeBufferWaterMark
        self.state = NIOLockedValueBox(State(topology: topology))
    }

    /// Reads the shards from the first seed that answers with a cluster that
    /// serves every slot. `writeBufferWaterMark`: for the connections to the
    /// primaries (`isWritable` turns false past its high mark).
    public static func connect(seeds: [RedisURL], clientName: String, tls: TLSConfiguration? = nil,
                               group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                               writeBufferWaterMark: ChannelOptions.Types.WriteBufferWaterMark? = nil) async throws -> RedisClusterClient {
        let topology = try await readTopology(from: seeds, clientName: clientName, tls: tls, group: group)
        return RedisClusterClient(seeds: seeds, clientName: clientName, tls: tls, group: group, writeBufferWaterMark: writeBufferWaterMark,
                                  topology: topology)
    }

    private static func readTopology(from seeds: [RedisURL], clientName: String, tls: TLSConfiguration?,
                                     group: any EventLoopGroup) async throws -> RedisClusterTopology {
        var failures: [String] = []
        for seed in seeds {
            do {
                let connection = try await RedisConnection.connect(to: seed, clientName: clientName + "-topology", group: group, tls: tls)
                defer { connection.close() }
                let topology = try RedisClusterTopology(shardsReply: try await connection.run(RESPCommand("CLUSTER", "SHARDS")), tls: seed.useTLS)
                guard topology.coversAllSlots else {
                    failures.append("\(seed): not every slot has a primary (a failover in progress?)")
                    continue
                }
                return topology
            } catch {
                failures.append("\(seed): \(error)")
            }
        }
        throw Unreachable(reason: "no node of the Redis Cluster answered with its shards: " + failures.joined(separator: "; "))
    }

    /// The shards as last read.
    public var topology: RedisClusterTopology { state.withLockedValue { $0.topology } }

    /// How many times the shards were read again (after a redirection or a lost primary).
    public var topologyRefreshes: Int { state.withLockedValue { $0.refreshes } }

    /// Reads the shards again, from the nodes of the last topology and then
    /// the seeds. Callers that ask while a read is under way share it.
    public func refreshTopology() async throws {
        try await refreshing.run { [self] in try await readTopologyAgain() }
    }

    private func readTopologyAgain() async throws {
        let known = topology.shards.flatMap { [$0.primary.endpoint] + $0.replicas.map(\.endpoint) }.map { seeds[0].at($0) }
        let fresh = try await Self.readTopology(from: known + seeds, clientName: clientName, tls: tls, group: group)
        let stale = state.withLockedValue { s -> [RedisConnection] in
            s.topology = fresh
            s.refreshes += 1
            // Connections to nodes that are no longer primaries go: commands there would only be redirected.
            let primaries = Set(fresh.shards.map(\.primary.endpoint))
            let gone = s.connections.filter { !primaries.contains($0.key) || !$0.value.isActive }
            for endpoint in gone.keys { s.connections[endpoint] = nil }
            return Array(gone.values)
        }
        for connection in stale { connection.close() }
    }

    /// The connection to the primary at `endpoint` if one is open: for a
    /// caller that must not wait (a frame is skipped rather than held).
    public func openConnection(to endpoint: RedisURL.Endpoint) -> RedisConnection? {
        state.withLockedValue { s in s.connections[endpoint].flatMap { $0.isActive ? $0 : nil } }
    }

    /// The connection to the primary at `endpoint`, opened on first use.
    public func connection(to endpoint: RedisURL.Endpoint) async throws -> RedisConnection {
        if let open = openConnection(to: endpoint) { return open }
        let connection = try await RedisConnection.connect(to: seeds[0].at(endpoint), clientName: clientName, group: group,
                                                           writeBufferWaterMark: writeBufferWaterMark, tls: tls)
        let kept = state.withLockedValue { s -> RedisConnection in
            if let other = s.connections[endpoint], other.isActive { return other }  // another caller was quicker
            s.connections[endpoint] = connection
            return connection
        }
        if kept !== connection { connection.close() }
        return kept
    }

    /// The primary that owns `key`'s slot, as last read.
    public func primary(forKey key: String) throws -> RedisURL.Endpoint {
        guard let shard = topology.shard(forKey: key) else {
            throw Unreachable(reason: "no primary owns slot \(RedisKeySlot.of(key)) (a failover in progress?)")
        }
        return shard.primary.endpoint
    }

    /// Runs `command`, whose keys all share `key`'s slot, on the primary that
    /// owns it, following `MOVED` and `ASK`. A server's refusal is thrown as
    /// `RedisServerError`, as `RedisConnection.run` does.
    public func run(_ command: RESPCommand, key: String, timeout: Duration = .seconds(5)) async throws -> RESPValue {
        var target = try primary(forKey: key)
        var asking = false
        for attempt in 0...Self.maxRedirections {
            let connection: RedisConnection
            do {
                connection = try await self.connection(to: target)
            } catch {
                // The primary is gone (killed, or unreachable): give the cluster a moment to
                // promote its replica (100 ms, doubling), then read the shards again.
                try await Task.sleep(for: .milliseconds(100 << attempt))
                try? await refreshTopology()
                target = try primary(forKey: key)
                continue
            }
            if asking {
                // ASKING then the command, in order on one connection: it lets this one command in.
                connection.sendIgnoringReply(RESPCommand("ASKING"))
                asking = false
            }
            let reply = try await connection.reply(to: command, timeout: timeout)
            switch RedisRedirection(reply, from: target) {
            case .moved(_, let to)?:
                try await refreshTopology()
                target = to
            case .ask(_, let to)?:
                target = to
                asking = true
            case nil:
                if case .error(let message) = reply { throw RedisServerError(command: command.name, message: message) }
                return reply
            }
        }
        throw Unreachable(reason: "\(command.name) for slot \(RedisKeySlot.of(key)) was redirected more than \(Self.maxRedirections) times")
    }

    public func close() {
        let open = state.withLockedValue { s -> [RedisConnection] in
            defer { s.connections = [:] }
            return Array(s.connections.values)
        }
        for connection in open { connection.close() }
    }
}
