import Logging
import Pipeline
import ServiceLifecycle

/// Fetches the identity provider's key set again every `interval`, so a key
/// the provider retires stops being accepted and a new one is there before
/// the first token signed with it. After a failed fetch it tries again
/// sooner, backing off from 5 s up to the interval. Its waits are on the
/// relay's clock.
package struct JWKSRefresher: Service {
    let keys: JWKSKeys
    package let interval: Duration
    let clock: any RelayClock

    package init(keys: JWKSKeys, interval: Duration, clock: any RelayClock) {
        self.keys = keys
        self.interval = interval
        self.clock = clock
    }

    package func run() async throws {
        await cancelWhenGracefulShutdown {
            var wait = interval
            while !Task.isCancelled {
                try? await clock.sleep(for: wait)
                if Task.isCancelled { return }
                do {
                    try await keys.refresh()
                    wait = interval
                } catch {
                    wait = wait == interval ? .seconds(5) : min(interval, wait * 2)
                }
            }
        }
    }
}
