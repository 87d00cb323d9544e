import Foundation
import NIOPosix
import NIOSSL
import RESP
import Synchronization

/// A throwaway `redis-server` (Debian's) on a free loopback port, for the
/// cluster tests and the cross-node benchmark: no disk persistence, stopped
/// by `stop()` or when the value goes away, restartable on the same port to
/// play a Redis outage.
public final class RedisServerProcess: @unchecked Sendable {
    public let port: Int
    /// With TLS: the self-signed certificate the server presents (also its CA), and only `rediss://` is served.
    public let certificateFile: String?
    private let keyFile: String?
    /// Added to the command line (`--replicaof`, for a replica).
    private let extraArguments: [String]
    private var process: Process?
    private let lock = NSLock()
    /// Its own working directory: a replica's synced copy (`dump.rdb`) or a
    /// cluster node's state must not be loaded by another server.
    private let directory = FileManager.default.temporaryDirectory.appendingPathComponent("framepipe-redis-\(UUID().uuidString)")
    /// Signalled at each piece of output and at the server's exit.
    private let changes = ChangeSignal()

    public struct Unavailable: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    public static let executable = "/usr/bin/redis-server"

    /// With `tls`, the server serves only TLS, with `certificate` (made for
    /// it if nil; the nodes of a TLS Redis Cluster share one, so each trusts the others).
    public init(port: Int? = nil, tls: Bool = false, certificate: (file: String, key: String)? = nil, arguments: [String] = []) async throws {
        extraArguments = arguments
        guard FileManager.default.isExecutableFile(atPath: Self.executable) else {
            throw Unavailable(reason: "\(Self.executable) is missing: install Debian's redis-server (scripts/install-deps.sh test does)")
        }
        self.port = try port ?? Self.freePort()
        if tls {
            if let certificate {
                (certificateFile, keyFile) = certificate
            } else {
                (certificateFile, keyFile) = try await TestCertificate.make()
            }
        } else {
            (certificateFile, keyFile) = (nil, nil)
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try await start()
    }

    /// Trusts this server's certificate, for clients of a TLS server.
    public var clientTLS: TLSConfiguration? {
        guard let certificateFile else { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(certificateFile)
        return tls
    }

    // Processes started from a test's thread inherit a signal mask that
    // blocks SIGTERM, so the server is told to stop with SHUTDOWN, and
    // killed outright when that cannot be said.
    deinit {
        if let process, process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: directory)
    }

    public var url: RedisURL { RedisURL(host: "127.0.0.1", port: port, useTLS: certificateFile != nil) }
    public var urlString: String { "\(certificateFile != nil ? "rediss" : "redis")://127.0.0.1:\(port)" }

    /// Starts the server (again; nothing if it runs) and waits until it says it is ready.
    public func start() async throws {
        guard !isRunning else { return }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        let listen: [String]
        if let certificateFile, let keyFile {
            listen = ["--port", "0", "--tls-port", String(port), "--tls-cert-file", certificateFile, "--tls-key-file", keyFile,
                      "--tls-ca-cert-file", certificateFile, "--tls-auth-clients", "no"]
        } else {
            listen = ["--port", String(port)]
        }
        process.arguments = listen + [
            "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--loglevel", "notice", "--dir", directory.path,
        ] + extraArguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let changes = self.changes
        process.terminationHandler = { _ in changes.changed() }
        try process.run()
        // What it writes, read to its end (kept alive by its own thread).
        let said = PipeDrain(output, changes: changes)
        lock.withLock { self.process = process }
        // Redis says when it listens; nothing is asked before.
        let ready = await changes.wait(timeout: .seconds(10)) {
            said.text.contains("Ready to accept connections") || (!process.isRunning && said.reachedEnd)
        }
        guard ready, process.isRunning else {
            throw Unavailable(reason: "redis-server on port \(port) did not start: \(said.text.suffix(2000))")
        }
    }

    /// Stops the server (SHUTDOWN NOSAVE, as an operator would) and waits for it to exit.
    public func stop() async {
        let process = lock.withLock { () -> Process? in
            defer { self.process = nil }
            return self.process
        }
        guard let process, process.isRunning else { return }
        _ = try? await command("SHUTDOWN", "NOSAVE")
        _ = await changes.wait(timeout: .seconds(5)) { !process.isRunning }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// Kills the server at once (SIGKILL): a crash, for outage tests.
    public func kill9() {
        let process = lock.withLock { () -> Process? in
            defer { self.process = nil }
            return self.process
        }
        if let process, process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// Whether the server process is up (not stopped or killed).
    public var isRunning: Bool { lock.withLock { process?.isRunning ?? false } }

    /// A short-lived connection for a test's own commands (CONFIG, CLIENT KILL, inspection).
    public func command(_ arguments: String...) async throws -> RESPValue {
        try await command(arguments)
    }

    public func command(_ arguments: [String]) async throws -> RESPValue {
        let connection = try await RedisConnection.connect(to: url, clientName: "test-admin", tls: clientTLS)
        defer { connection.close() }
        return try await connection.run(RESPCommand(arguments.map { .string($0) }))
    }

    /// Ports this test process has handed out: a port freed by one server is
    /// not given to another (a Redis Cluster node whose bus port another
    /// cluster's node had used would be gossiped into that cluster).
    private static let handedOut = Mutex<Set<Int>>([])

    static func freePort() throws -> Int {
        while true {
            let socket = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
            defer { try? socket.close().wait() }
            let port = socket.localAddress!.port!
            if handedOut.withLock({ $0.insert(port).inserted }) { return port }
        }
    }
}
