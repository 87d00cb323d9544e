import Foundation
import RESP

/// A replicated Redis on loopback ports, from Debian's `redis-server` and
/// `redis-sentinel`: a master, one replica, and three sentinels (quorum 2)
/// that fail over one second after the master stops answering. For the
/// Sentinel tests; everything is killed by `stop()` or when it goes away.
public final class RedisSentinelGroup: @unchecked Sendable {
    public static let masterName = "framepipe-test"
    public static let sentinelExecutable = "/usr/bin/redis-sentinel"

    public let master: RedisServerProcess
    public let replica: RedisServerProcess
    public let sentinelPorts: [Int]
    private let directory: URL
    private var sentinels: [Process] = []

    /// The URL nodes are given: every sentinel, then the master's name.
    public var url: String {
        "redis+sentinel://" + sentinelPorts.map { "127.0.0.1:\($0)" }.joined(separator: ",") + "/\(Self.masterName)"
    }

    public init() async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.sentinelExecutable) else {
            throw RedisServerProcess.Unavailable(reason: "\(Self.sentinelExecutable) is missing: install Debian's redis-sentinel (scripts/install-deps.sh test does)")
        }
        master = try await RedisServerProcess()
        replica = try await RedisServerProcess(arguments: ["--replicaof", "127.0.0.1", "\(master.port)"])
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("framepipe-sentinel-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        sentinelPorts = try (0..<3).map { _ in try RedisServerProcess.freePort() }
        try await waitUntil("the replica is in sync") {
            (try? await self.replica.command("INFO", "replication"))?.string?.contains("master_link_status:up") == true
        }
        for port in sentinelPorts {
            // Sentinel rewrites its file as it learns: one file each.
            let file = directory.appendingPathComponent("sentinel-\(port).conf")
            try """
                port \(port)
                bind 127.0.0.1
                daemonize no
                dir \(directory.path)
                sentinel monitor \(Self.masterName) 127.0.0.1 \(master.port) 2
                sentinel down-after-milliseconds \(Self.masterName) 1000
                sentinel failover-timeout \(Self.masterName) 5000
                sentinel parallel-syncs \(Self.masterName) 1

                """.write(to: file, atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Self.sentinelExecutable)
            process.arguments = [file.path]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            sentinels.append(process)
        }
        // A failover needs each sentinel to know the replica and the other two.
        for port in sentinelPorts {
            try await waitUntil("sentinel \(port) knows the replica and the other sentinels", timeout: .seconds(20)) {
                guard let replicas = try? await self.sentinel(port, "SENTINEL", "replicas", Self.masterName).array,
                      let others = try? await self.sentinel(port, "SENTINEL", "sentinels", Self.masterName).array else { return false }
                return replicas.count == 1 && others.count == 2
            }
        }
    }

    deinit {
        for process in sentinels where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: directory)
    }

    /// The master as the sentinels name it now.
    public func currentMasterPort() async throws -> Int? {
        let reply = try await sentinel(sentinelPorts[0], "SENTINEL", "get-master-addr-by-name", Self.masterName)
        return reply.array?.last?.string.flatMap { Int($0) }
    }

    public func stop() async {
        for process in sentinels where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        await replica.stop()
        await master.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    private func sentinel(_ port: Int, _ arguments: String...) async throws -> RESPValue {
        let connection = try await RedisConnection.connect(to: RedisURL(host: "127.0.0.1", port: port), clientName: "test-admin")
        defer { connection.close() }
        return try await connection.run(RESPCommand(arguments.map { .string($0) }))
    }

    private func waitUntil(_ what: String, timeout: Duration = TestDeadline.event, _ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw RedisServerProcess.Unavailable(reason: "timed out waiting until \(what)")
    }
}
