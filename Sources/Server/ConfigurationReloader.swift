import Foundation
import Logging
import NIOConcurrencyHelpers
import Pipeline
import RelayCore

/// Where a reload reads the pipelines file again: its path and the
/// registry that knows the stages and policies it may name.
public struct PipelineSource: Sendable {
    public let path: String
    public let registry: StageRegistry

    public init(path: String, registry: StageRegistry) {
        self.path = path
        self.registry = registry
    }

    public func load() throws(ConfigError) -> PipelineConfig { try ConfigFile.load(path: path, registry: registry) }
}

/// Re-reads the pipelines file and the TLS files on SIGHUP or
/// `POST /api/reload`, and applies them only if every one is good.
///
/// It exists so a reload is all or nothing: a file with any problem (the
/// same list `framepipe check` prints), a `--pipeline` the new file lacks,
/// or an unreadable certificate leaves everything as it runs, and says why.
/// Reloads are serialised, so two at once cannot interleave.
final class ConfigurationReloader: Sendable {
    /// What one reload did.
    struct Outcome: Sendable {
        let applied: Bool
        /// The generation running afterwards.
        let generation: Int
        let problems: [ConfigProblem]
        /// Whether certificate and key were re-read (with TLS on).
        let tlsReloaded: Bool
    }

    let live: LiveConfiguration
    let source: PipelineSource?
    let tls: TLSFiles?
    let hub: ViewerHub
    let metrics: RelayMetrics
    let logger: Logger
    private let serial = NIOLock()

    init(live: LiveConfiguration, source: PipelineSource?, tls: TLSFiles?, hub: ViewerHub, metrics: RelayMetrics, logger: Logger) {
        self.live = live
        self.source = source
        self.tls = tls
        self.hub = hub
        self.metrics = metrics
        self.logger = logger
    }

    /// `trigger` says who asked ("SIGHUP", "api"), for the log line.
    func reload(trigger: String) -> Outcome {
        serial.withLock { reloadNow(trigger: trigger) }
    }

    private func reloadNow(trigger: String) -> Outcome {
        var problems: [ConfigProblem] = []
        var config: PipelineConfig?
        if let source {
            do throws(ConfigError) {
                config = try source.load()
            } catch {
                problems += error.problems
            }
            if let loaded = config, let fallback = live.current.fallback, loaded.pipeline(named: fallback) == nil {
                problems.append(ConfigProblem(path: "(--pipeline)", reason:
                    "the relay runs with --pipeline \(fallback), and the file no longer defines it; known: \(loaded.pipelines.map(\.name).joined(separator: ", "))"))
            }
        }
        var credentials: TLSFiles.Credentials?
        if let tls {
            do {
                credentials = try tls.read()
            } catch {
                problems.append(ConfigProblem(path: "(tls)", reason: "\(error)"))
            }
        }
        if source == nil, tls == nil {
            problems.append(ConfigProblem(path: "(source)", reason: "this relay was given its pipelines in code and serves no TLS; there is nothing to re-read"))
        }
        guard problems.isEmpty else {
            let running = live.number
            metrics.configReload(applied: false, generation: running)
            logger.error("reload refused; the running configuration stays", metadata: [
                "trigger": "\(trigger)", "generation": "\(running)",
                "problems": "\(problems.map(\.description).joined(separator: "; "))"])
            return Outcome(applied: false, generation: running, problems: problems, tlsReloaded: false)
        }
        if let credentials { tls?.install(credentials) }
        var generation = live.number
        if let config, let source {
            generation = live.replace(with: config, source: source.path).number
            hub.replaceDeliveryPolicy(config.delivery.makePolicy)
        }
        metrics.configReload(applied: true, generation: generation)
        logger.notice("configuration reloaded", metadata: [
            "trigger": "\(trigger)", "generation": "\(generation)", "pipelines": "\(live.current.config.pipelines.map(\.name).joined(separator: ","))",
            "routes": "\(live.current.config.routes.count)", "tls": "\(credentials != nil ? "re-read" : "off")"])
        return Outcome(applied: true, generation: generation, problems: [], tlsReloaded: credentials != nil)
    }
}
