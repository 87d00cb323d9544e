import Access
import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Pipeline
import RelayCore
import ServiceLifecycle

/// Runs a `SourcePuller` for each camera in the file's `"sources"`, and
/// follows reloads: a source added is pulled, one removed is stopped (its
/// stream ends `closed`), one changed is restarted with its new settings.
///
/// Its own HTTP client, so cameras never queue behind each other or behind
/// webhooks: a shared client opens at most 8 connections to one host, and
/// a recorder serving many cameras is one host.
final class SourceService: Service, Sendable {
    let live: LiveConfiguration
    let services: StreamFeed.Services
    let leases: any SourceLeases
    let maxFrameBytes: Int
    let clock: any RelayClock
    let logger: Logger
    private let running = NIOLockedValueBox<[String: (puller: SourcePuller, task: Task<Void, Never>)]>([:])

    init(live: LiveConfiguration, services: StreamFeed.Services, leases: any SourceLeases, maxFrameBytes: Int,
         clock: any RelayClock = SystemRelayClock(), logger: Logger) {
        self.live = live
        self.clock = clock
        self.services = services
        self.leases = leases
        self.maxFrameBytes = maxFrameBytes
        self.logger = logger
    }

    /// Made when the service runs and shut down when it stops (a client
    /// dropped unstopped is a leak, and a crash in debug builds).
    static func makeClient() -> HTTPClient {
        // A refused connection fails at once: the puller's own backoff retries it and
        // says so, where the client's quiet retries would show "connecting" until a deadline.
        HTTPClient.failingFast {
            $0.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 1024
            $0.timeout.connect = .seconds(5)
            $0.redirectConfiguration = .follow(max: 3, allowCycles: false)
        }
    }

    func run() async throws {
        let client = Self.makeClient()
        await cancelWhenGracefulShutdown {
            for await generation in self.live.generations() {
                self.follow(generation.config.sources, client: client)
            }
        }
        let stopping = running.withLockedValue { pullers in
            defer { pullers = [:] }
            return pullers.values.map(\.task)
        }
        for task in stopping { task.cancel() }
        for task in stopping { await task.value }
        try? await client.shutdown()
    }

    /// Starts, stops and restarts pullers to match `sources`.
    func follow(_ sources: [PulledSource], client: HTTPClient) {
        let (started, stopped) = running.withLockedValue { pullers -> ([String], [Task<Void, Never>]) in
            var stopped: [Task<Void, Never>] = []
            var started: [String] = []
            for (id, entry) in pullers where sources.first(where: { $0.streamID == id }) != entry.puller.source {
                entry.task.cancel()
                stopped.append(entry.task)
                pullers[id] = nil
            }
            for source in sources where pullers[source.streamID] == nil {
                let puller = SourcePuller(source: source, services: services, leases: leases, client: client, maxFrameBytes: maxFrameBytes,
                                          clock: clock, logger: logger)
                pullers[source.streamID] = (puller, Task { await puller.run() })
                started.append(source.streamID)
            }
            return (started, stopped)
        }
        if !started.isEmpty || !stopped.isEmpty {
            logger.info("sources followed", metadata: ["pulling": "\(sources.count)", "started": "\(started.joined(separator: ","))",
                                                      "stopped": "\(stopped.count)"])
        }
    }

    /// Every source listed now, by stream id.
    var statuses: [String: SourceStatus] {
        running.withLockedValue { pullers in pullers.mapValues { $0.puller.status.withLockedValue { $0 } } }
    }
}
