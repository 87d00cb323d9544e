import Cluster
import Access
import ArgumentParser
import RESP
import Foundation
import Logging
import Pipeline

/// `framepipe serve`: runs the relay. Every option also reads an
/// environment variable, `FRAMEPIPE_` and the option in upper snake case
/// (`ServeEnvironment`); an option given on the command line wins.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the relay: streamers on /ws/stream/{id}, viewers on /ws/viewer, the dashboard on /.",
        discussion: """
            Every option can also be set with an environment variable: FRAMEPIPE_ and the option in upper snake case \
            (--max-viewers 500 is FRAMEPIPE_MAX_VIEWERS=500). An option on the command line wins over its variable. \
            FRAMEPIPE_ALLOWED_ORIGINS, FRAMEPIPE_REDIS_URL and FRAMEPIPE_REDIS_CA_FILE, the older names, are still read.
            """)

    @OptionGroup(title: "Listening and TLS") var listening: ListeningOptions
    @OptionGroup(title: "Pipeline") var pipelineOptions: PipelineOptions
    @OptionGroup(title: "Timeouts") var timeouts: TimeoutOptions
    @OptionGroup(title: "Limits") var limits: LimitOptions
    @OptionGroup(title: "Access") var access: AccessOptions
    @OptionGroup(title: "Cluster") var cluster: ClusterOptions
    @OptionGroup(title: "Events") var events: EventOptions
    @OptionGroup(title: "Logging") var logging: LoggingOptions

    func run() async throws {
        let env = ServeEnvironment(variables: ProcessInfo.processInfo.environment)
        var c = RelayConfiguration()
        try configureListening(&c, env)
        try configureTimeouts(&c, env)
        try configureLimits(&c, env)
        try configureAccess(&c, env)
        try configureCluster(&c, env)
        try configureWebhooks(&c, env)
        c.pipeline = env.string(pipelineOptions.pipeline, "pipeline")
        switch env.string(pipelineOptions.viewerCompat, "viewer-compat") {
        case nil, "none": c.viewersNamePatient = false
        case "patient_id": c.viewersNamePatient = true
        case let other?: throw ValidationError("\(ServeEnvironment.name("viewer-compat")) must be patient_id or none, got \(other)")
        }
        c.progressInterval = try env.seconds(logging.progressInterval, "progress-interval") ?? c.progressInterval
        let levelName = env.string(logging.logLevel, "log-level") ?? "info"
        guard let level = Logger.Level(rawValue: levelName) else {
            throw ValidationError("\(ServeEnvironment.name("log-level")) must be trace, debug, info, notice, warning, error or critical, got \(levelName)")
        }

        let formatName = env.string(logging.logFormat, "log-format") ?? "text"
        switch formatName {
        case "text":
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        case "json":
            LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: level) }
        default:
            throw ValidationError("\(ServeEnvironment.name("log-format")) must be text or json, got \(formatName)")
        }
        let logger = Logger(label: "framepipe")
        let file = env.string(pipelineOptions.config, "config") ?? "pipelines.json"
        let pipelines: PipelineConfig
        do {
            pipelines = try ConfigFile.load(path: file, registry: Framepipe.registry)
        } catch {
            ConsoleOutput.err("\(error)")
            throw ExitCode(1)
        }
        do {
            let configuration = c
            let server = try RelayServer(configuration: configuration, pipelines: pipelines,
                                         source: PipelineSource(path: file, registry: Framepipe.registry), logger: logger)
            try await server.run { port in
                ConsoleOutput.err(StartupBanner(configuration: configuration, port: port, pipeline: server.pipeline.name).text)
            }
        } catch let error as RelayServer.UnknownPipeline {
            ConsoleOutput.err("\(file): \(error)")
            throw ExitCode(1)
        } catch let error as RelayServer.InsecureListen {
            ConsoleOutput.err("\(error)")
            throw ExitCode(1)
        } catch let error as TokenAuthority.InvalidKey {
            ConsoleOutput.err("\(error)")
            throw ExitCode(1)
        } catch let error as AuditLogUnwritable {
            ConsoleOutput.err("\(error)")
            throw ExitCode(1)
        }
    }

    private func configureListening(_ c: inout RelayConfiguration, _ env: ServeEnvironment) throws {
        c.host = env.string(listening.host, "host") ?? c.host
        c.port = try env.value(listening.port, "port", Int.init) ?? c.port
        guard (0...65535).contains(c.port) else { throw ValidationError("\(ServeEnvironment.name("port")) must be 0-65535, got \(c.port)") }
        c.tlsCertificatePath = env.string(listening.tlsCert, "tls-cert")
        c.tlsKeyPath = env.string(listening.tlsKey, "tls-key")
        guard (c.tlsCertificatePath == nil) == (c.tlsKeyPath == nil) else {
            throw ValidationError("--tls-cert and --tls-key go together")
        }
    }

    private func configureTimeouts(_ c: inout RelayConfiguration, _ env: ServeEnvironment) throws {
        c.viewerSendTimeout = try env.seconds(timeouts.viewerSendTimeout, "viewer-send-timeout") ?? c.viewerSendTimeout
        c.idleWarning = try env.seconds(timeouts.idleWarning, "idle-warning") ?? c.idleWarning
        c.idleTimeout = try env.seconds(timeouts.idleTimeout, "idle-timeout") ?? c.idleTimeout
        guard c.idleWarning < c.idleTimeout else { throw ValidationError("idle-warning must be shorter than idle-timeout") }
        c.pingInterval = try env.seconds(timeouts.pingInterval, "ping-interval") ?? c.pingInterval
        c.pingTimeout = try env.seconds(timeouts.pingTimeout, "ping-timeout") ?? c.pingTimeout
        c.limits.handshakeTimeout = try env.seconds(timeouts.handshakeTimeout, "handshake-timeout") ?? c.limits.handshakeTimeout
        c.drainDelay = try env.seconds(timeouts.drainDelay, "drain-delay") ?? c.drainDelay
    }

    private func configureLimits(_ c: inout RelayConfiguration, _ env: ServeEnvironment) throws {
        c.maxMessageBytes = try env.value(limits.maxMessageBytes, "max-message-bytes", Int.init) ?? c.maxMessageBytes
        guard (1024...(256 << 20)).contains(c.maxMessageBytes) else {
            throw ValidationError("\(ServeEnvironment.name("max-message-bytes")) must be 1024-268435456, got \(c.maxMessageBytes)")
        }
        c.limits.maxStreams = try env.count(limits.maxStreams, "max-streams") ?? c.limits.maxStreams
        c.limits.maxViewers = try env.count(limits.maxViewers, "max-viewers") ?? c.limits.maxViewers
        c.limits.maxViewersPerToken = try env.count(limits.maxViewersPerToken, "max-viewers-per-token") ?? c.limits.maxViewersPerToken
        c.limits.maxConnectionsPerAddress = try env.count(limits.maxConnectionsPerAddress, "max-connections-per-address")
            ?? c.limits.maxConnectionsPerAddress
        c.limits.upgradesPerSecondPerAddress = try env.rate(limits.upgradeRatePerAddress, "upgrade-rate-per-address")
            ?? c.limits.upgradesPerSecondPerAddress
        c.limits.maxStreamMessagesPerSecond = try env.rate(limits.maxStreamFps, "max-stream-fps") ?? c.limits.maxStreamMessagesPerSecond
    }

    private func configureAccess(_ c: inout RelayConfiguration, _ env: ServeEnvironment) throws {
        let origins = env.list(access.allowedOrigin, "allowed-origin")
        for origin in origins where OriginPolicy.authority(of: origin.lowercased()) == nil {
            throw ValidationError("allowed origin \(origin) must look like https://host[:port]")
        }
        c.originPolicy = OriginPolicy(allowedOrigins: origins)
        c.insecure = env.flag(access.insecure, "insecure")
        c.trustedProxies = TrustedProxies(try env.list(access.trustedProxy, "trusted-proxy").map { text in
            guard let range = TrustedProxies.Range(text) else {
                throw ValidationError("--trusted-proxy \(text) must be an IP address or a CIDR range such as 10.0.0.0/8 or fd00::/8")
            }
            return range
        })
        c.auditLogPath = env.string(access.auditLog, "audit-log")

        var settings = AuthSettings()
        if let path = env.string(access.jwtSecretFile, "jwt-secret-file") { settings.hmacSecret = try KeyFile.secret(at: path) }
        if let path = env.string(access.jwtPublicKey, "jwt-public-key") { settings.ecdsaPublicKeyPEM = try KeyFile.text(at: path) }
        settings.jwksFile = env.string(access.jwksFile, "jwks-file")
        settings.jwksURL = env.string(access.jwksUrl, "jwks-url")
        if settings.jwksFile != nil, settings.jwksURL != nil { throw ValidationError("give one of --jwks-file and --jwks-url") }
        if let url = settings.jwksURL, !(url.hasPrefix("https://") || url.hasPrefix("http://")) {
            throw ValidationError("--jwks-url must be an http:// or https:// URL, got \(url)")
        }
        settings.jwksRefresh = try env.seconds(access.jwksRefresh, "jwks-refresh") ?? settings.jwksRefresh
        settings.jwksCooldown = try env.seconds(access.jwksCooldown, "jwks-cooldown") ?? settings.jwksCooldown
        settings.issuer = env.string(access.jwtIssuer, "jwt-issuer")
        settings.audience = env.string(access.jwtAudience, "jwt-audience")
        settings.claims.role = env.string(access.jwtRoleClaim, "jwt-role-claim") ?? settings.claims.role
        settings.claims.viewerRole = env.string(access.jwtViewerRole, "jwt-viewer-role") ?? settings.claims.viewerRole
        settings.claims.streamerRole = env.string(access.jwtStreamerRole, "jwt-streamer-role") ?? settings.claims.streamerRole
        settings.claims.adminRole = env.string(access.jwtAdminRole, "jwt-admin-role") ?? settings.claims.adminRole
        settings.claims.streams = env.string(access.jwtStreamsClaim, "jwt-streams-claim") ?? settings.claims.streams
        settings.revocationFile = env.string(access.revocationFile, "revocation-file")
        settings.expiryWarning = try env.seconds(access.tokenExpiryWarning, "token-expiry-warning") ?? settings.expiryWarning
        if !settings.isEnabled, settings.revocationFile != nil {
            throw ValidationError("--revocation-file needs auth (--jwt-secret-file, --jwt-public-key, --jwks-file or --jwks-url)")
        }
        c.auth = settings
    }

    private func configureWebhooks(_ c: inout RelayConfiguration, _ env: ServeEnvironment) throws {
        let urls = env.list(events.webhook, "webhook")
        let secretFile = env.string(events.webhookSecretFile, "webhook-secret-file")
        guard !urls.isEmpty else {
            if secretFile != nil { throw ValidationError("--webhook-secret-file needs --webhook") }
            return
        }
        for url in urls {
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""), parsed.host?.isEmpty == false else {
                throw ValidationError("\(ServeEnvironment.name("webhook")) must be an http:// or https:// URL, got \"\(url)\"")
            }
        }
        guard let secretFile else {
            throw ValidationError("--webhook needs --webhook-secret-file: receivers must be able to tell the relay's events from forgeries")
        }
        c.webhooks = WebhookSettings(urls: urls, secret: try KeyFile.secret(at: secretFile))
    }

    private func configureCluster(_ c: inout RelayConfiguration, _ env: ServeEnvironment) throws {
        guard let url = env.string(cluster.redis, "redis") else {
            if cluster.nodeId != nil || cluster.nodeTimeout != nil || cluster.redisCa != nil || cluster.readyWithoutRedis {
                throw ValidationError("--node-id, --node-timeout, --redis-ca and --ready-without-redis need --redis")
            }
            return
        }
        var settings = ClusterSettings(redis: try RedisURL(url))
        if let id = env.string(cluster.nodeId, "node-id") {
            guard ClusterSettings.isValidNodeID(id) else { throw ValidationError("node id must be 1-64 characters of A-Z a-z 0-9 . _ -, got \"\(id)\"") }
            settings.nodeID = id
        }
        settings.nodeTimeout = try env.seconds(cluster.nodeTimeout, "node-timeout") ?? settings.nodeTimeout
        guard settings.nodeTimeout >= .milliseconds(300) else { throw ValidationError("node-timeout must be at least 0.3 seconds") }
        if let ca = env.string(cluster.redisCa, "redis-ca") {
            guard settings.redis.useTLS else { throw ValidationError("--redis-ca needs a rediss:// URL") }
            settings.redisCAFile = ca
            _ = try settings.tlsConfiguration()
        }
        c.cluster = settings
        c.readyWithoutRedis = env.flag(cluster.readyWithoutRedis, "ready-without-redis")
    }
}
