import Foundation
import NIOPosix

/// Debian's nginx as a real reverse proxy in front of a test relay: the
/// test writes its configuration (WebSocket upgrades proxied, the client
/// named in X-Forwarded-For/-Host/-Proto, the relay's own Host not kept), runs
/// it in the foreground on a free loopback port, and stops it.
final class NginxProcess: Sendable {
    let port: Int
    let directory: URL
    private let process: Process

    struct Unavailable: Error, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }

    /// The configuration the README recommends, pointed at `upstreamPort`.
    static func configuration(port: Int, upstreamPort: Int, directory: String) -> String {
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
            map $http_upgrade $connection_upgrade { default upgrade; '' close; }
            server {
                listen 127.0.0.1:\(port);
                location / {
                    proxy_pass http://127.0.0.1:\(upstreamPort);
                    proxy_http_version 1.1;
                    proxy_set_header Upgrade $http_upgrade;
                    proxy_set_header Connection $connection_upgrade;
                    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                    proxy_set_header X-Forwarded-Host $http_host;
                    proxy_set_header X-Forwarded-Proto $scheme;
                    proxy_read_timeout 1h;
                    proxy_send_timeout 1h;
                    proxy_buffering off;
                }
            }
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
        try process.run()
        self.process = process
        // Up once it accepts a connection.
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
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning, Date() < deadline { usleep(10_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }
}
