import ServiceLifecycle
import UnixSignals

/// SIGHUP reloads the configuration (`systemctl reload framepipe`), as it
/// does for nginx and HAProxy. The audit log also reopens on it, on its own.
struct ReloadOnHangup: Service {
    let reloader: ConfigurationReloader

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in hangups { _ = reloader.reload(trigger: "SIGHUP") }
        }
    }
}
