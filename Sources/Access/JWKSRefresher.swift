import Logging
import ServiceLifecycle

/// Fetches the identity provider's key set again every `interval`, so a key
/// the provider retires stops being accepted and a new one is there before
/// the first token signed with it. After a failed fetch it tries again
/// sooner, backing off from 5 s up to the interval.
package struct JWKSRefresher: Service {
    let keys: JWKSKeys
    package let interval: Duration

    package init(keys: JWKSKeys, interval: Duration) {
        self.keys = keys
        self.interval = interval
    }

    package func run() async throws {
        await cancelWhenGracefulShutdown {
            var wait = interval
            while !Task.isCancelled {
                try? await Task.sleep(for: wait)
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
