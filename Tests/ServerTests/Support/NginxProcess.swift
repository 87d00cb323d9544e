import Foundation
import NIOPosix

/// Debian's nginx as a real reverse proxy in front of a test relay, with
/// the configuration docs/access.md recommends (read from the page): run
/// in the foreground on a free loopback port, and stopped by the test.
final class NginxProcess: Sendable {
    let port: Int
    let directory: URL
    private let process: Process
    /// Signalled when nginx exits.
    private let exited: DispatchSemaphore

    struct Unavailable: Error, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }

    /// The `map` line and `location` block docs/access.md recommends, read
    /// from the page itself, so what is tested is what is documented.
    static func documentedProxyBlock(upstreamPort: Int) throws -> String {
        let page = try String(contentsOf: packageRoot.appendingPathComponent("docs/access.md"), encoding: .utf8)
        guard let begin = page.range(of: "<!-- nginx:begin -->\n```nginx\n"), let end = page.range(of: "```\n<!-- nginx:end -->") else {
            throw Unavailable(reason: "docs/access.md has no nginx block between its markers")
        }
        let lines = page[begin.upperBound..<end.lowerBound].split(separator: "\n", omittingEmptySubsequences: false)
        guard let map = lines.first(where: { $0.hasPrefix("map ") }),
              let start = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "location / {" }),
              let stop = lines[start...].firstIndex(where: { $0 == "    }" })
        else { throw Unavailable(reason: "docs/access.md's nginx block has no map line or location block") }
        let location = lines[start...stop].joined(separator: "\n")
            .replacingOccurrences(of: "http://127.0.0.1:8080", with: "http://127.0.0.1:\(upstreamPort)")
        return map + "\n" + "server {\n    listen 127.0.0.1:PORT;\n" + location + "\n}\n"
    }

    /// A whole nginx.conf for a test: the documented block, on a loopback port, with its files in `directory`.
    static func configuration(port: Int, upstreamPort: Int, directory: String) throws -> String {
        """
        worker_processes 1;
        daemon off;
        pid \(directory)/nginx.pid;
        error_log \(directory)/error.log warn;
        events { worker_connections 4096; }
        http {
            access_log off;
            client_body_temp_path \(directory)/body;
            proxy_temp_path \(directory)/proxy;
            fastcgi_temp_path \(directory)/fastcgi;
            uwsgi_temp_path \(directory)/uwsgi;
            scgi_temp_path \(directory)/scgi;
        \(try documentedProxyBlock(upstreamPort: upstreamPort).replacingOccurrences(of: "PORT", with: "\(port)"))
        }
        """
    }

    init(upstreamPort: Int) async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/nginx") else {
            throw Unavailable(reason: "nginx is not installed (scripts/install-deps.sh test installs it)")
        }
        let socket = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        port = socket.localAddress!.port!
        try await socket.close()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("framepipe-nginx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let config = directory.appendingPathComponent("nginx.conf")
        try Self.configuration(port: port, upstreamPort: upstreamPort, directory: directory.path)
            .write(to: config, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
        process.arguments = ["-c", config.path, "-p", directory.path, "-e", directory.appendingPathComponent("error.log").path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
        self.exited = exited
        self.process = process
        // Up once it accepts a connection: nginx announces nothing when it is ready,
        // so the port is asked every 50 ms (the one polling wait on a process here).
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if let probe = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get() {
                try? await probe.close()
                return
            }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let log = (try? String(contentsOf: directory.appendingPathComponent("error.log"), encoding: .utf8)) ?? ""
        stop()
        throw Unavailable(reason: "nginx did not start: \(log)")
    }

    /// Stops nginx (SIGQUIT, then SIGKILL) and removes its directory.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGQUIT)
            if exited.wait(timeout: .now() + 5) == .timedOut { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }
}
