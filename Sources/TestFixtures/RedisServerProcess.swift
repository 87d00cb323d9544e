import Foundation
import NIOPosix
import NIOSSL
import RESP

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

    public struct Unavailable: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    public static let executable = "/usr/bin/redis-server"

    public init(port: Int? = nil, tls: Bool = false, arguments: [String] = []) async throws {
        extraArguments = arguments
        guard FileManager.default.isExecutableFile(atPath: Self.executable) else {
            throw Unavailable(reason: "\(Self.executable) is missing: install Debian's redis-server (scripts/install-deps.sh test does)")
        }
        self.port = try port ?? Self.freePort()
        if tls {
            (certificateFile, keyFile) = try Self.makeCertificate()
        } else {
            (certificateFile, keyFile) = (nil, nil)
        }
        try await start()
    }

    /// Trusts this server's certificate, for clients of a TLS server.
    public var clientTLS: TLSConfiguration? {
        guard let certificateFile else { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(certificateFile)
        return tls
    }

    private static func makeCertificate() throws -> (String, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("framepipe-redis-tls-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let cert = dir.appendingPathComponent("cert.pem").path, key = dir.appendingPathComponent("key.pem").path
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
        openssl.standardOutput = FileHandle.nullDevice
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        guard openssl.terminationStatus == 0 else { throw Unavailable(reason: "openssl could not make a test certificate") }
        return (cert, key)
    }

    // Processes started from a test's thread inherit a signal mask that
    // blocks SIGTERM, so the server is told to stop with SHUTDOWN, and
    // killed outright when that cannot be said.
    deinit {
        if let process, process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    public var url: RedisURL { RedisURL(host: "127.0.0.1", port: port, useTLS: certificateFile != nil) }
    public var urlString: String { "\(certificateFile != nil ? "rediss" : "redis")://127.0.0.1:\(port)" }

    /// Starts the server (again) and waits until it answers PING.
    public func start() async throws {
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
            "--daemonize", "no", "--loglevel", "warning", "--dir", NSTemporaryDirectory(),
        ] + extraArguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        lock.withLock { self.process = process }
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if let connection = try? await RedisConnection.connect(to: url, clientName: "test-probe", tls: clientTLS) {
                defer { connection.close() }
                if (try? await connection.run(RESPCommand("PING")))?.string == "PONG" { return }
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw Unavailable(reason: "redis-server on port \(port) did not start")
    }

    /// Stops the server (SHUTDOWN NOSAVE, as an operator would) and waits for it to exit.
    public func stop() async {
        let process = lock.withLock { () -> Process? in
            defer { self.process = nil }
            return self.process
        }
        guard let process, process.isRunning else { return }
        _ = try? await command("SHUTDOWN", "NOSAVE")
        let deadline = ContinuousClock.now + .seconds(5)
        while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
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

    /// A short-lived connection for a test's own commands (CONFIG, CLIENT KILL, inspection).
    public func command(_ arguments: String...) async throws -> RESPValue {
        let connection = try await RedisConnection.connect(to: url, clientName: "test-admin", tls: clientTLS)
        defer { connection.close() }
        return try await connection.run(RESPCommand(arguments.map { .string($0) }))
    }

    static func freePort() throws -> Int {
        let socket = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
        defer { try? socket.close().wait() }
        return socket.localAddress!.port!
    }
}
