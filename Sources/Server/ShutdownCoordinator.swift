import Pipeline
import RelayCore
import Logging
import ServiceLifecycle

/// Runs the contract's shutdown before the HTTP server stops: on SIGTERM or
/// SIGINT every viewer gets `stream_ended` (reason `shutdown`) for each live
/// stream, streamers are closed with that reason, viewers' writers drain and
/// close, and only then does the server stop accepting and exit.
///
/// With a `drainDelay`, `/readyz` turns 503 at once and everything keeps
/// streaming for that long first, so a load balancer stops sending new
/// clients before the old ones are closed.
///
/// It sits after the server in the service group, and a group shuts down
/// in reverse order, so this runs first.
struct ShutdownCoordinator: Service {
    let hub: ViewerHub
    let readiness: Readiness
    /// The drain delay is counted on it (a test moves it).
    let clock: any RelayClock
    let logger: Logger
    var drainDelay: Duration = .zero
    var drainTimeout: Duration = .seconds(3)

    func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            return  // cancelled: nothing to coordinate
        }
        readiness.beginDraining()
        if drainDelay > .zero {
            logger.notice("draining: not ready, still streaming until the drain delay ends", metadata: ["drain_delay_s": "\(drainDelay.seconds)"])
            try? await clock.sleep(for: drainDelay)
        }
        hub.beginShutdown()
        // The drain timeout bounds the shutdown itself, so it is real time:
        // a test's clock that stands still must not keep a relay from stopping.
        let deadline = ContinuousClock.now + drainTimeout
        while ContinuousClock.now < deadline {
            let counts = hub.connectionCounts
            if counts.streams == 0 && counts.viewers == 0 { break }
            try? await Task.sleep(for: .milliseconds(20))
        }
        let left = hub.connectionCounts
        logger.notice("connections closed", metadata: ["viewers_left": "\(left.viewers)", "streams_left": "\(left.streams)"])
    }
}
