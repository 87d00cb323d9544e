import ArgumentParser
import RESP
import Foundation
import Logging
import Pipeline

/// `framepipe serve`: runs the relay. Every flag also reads an environment
/// variable (`FRAMEPIPE_` + the flag in upper snake case); a flag wins.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the relay: streamers on /ws/stream/{id}, viewers on /ws/viewer.")

    @Option(help: "Pipelines file (FRAMEPIPE_CONFIG).")
    var config: String?
    @Option(help: "Pipeline to run; default from the file (FRAMEPIPE_PIPELINE).")
    var pipeline: String?
    @Option(help: "Address to listen on (FRAMEPIPE_HOST). Default 127.0.0.1.")
    var host: String?
    @Option(help: "Port to listen on; 0 picks a free one (FRAMEPIPE_PORT). Default 8080.")
    var port: Int?
    @Option(help: "Seconds a viewer's socket may accept nothing while frames wait before it is dropped (FRAMEPIPE_VIEWER_SEND_TIMEOUT). Default 1.")
    var viewerSendTimeout: Double?
    @Option(help: "Seconds of streamer silence before it is logged and pinged (FRAMEPIPE_IDLE_WARNING). Default 10.")
    var idleWarning: Double?
    @Option(help: "Seconds of streamer silence before the stream is closed with reason timeout (FRAMEPIPE_IDLE_TIMEOUT). Default 15.")
    var idleTimeout: Double?
    @Option(help: "Seconds between pings to viewers (FRAMEPIPE_PING_INTERVAL). Default 45.")
    var pingInterval: Double?
    @Option(help: "Seconds a viewer has to answer a ping (FRAMEPIPE_PING_TIMEOUT). Default 15.")
    var pingTimeout: Double?
    @Option(help: "Largest WebSocket message accepted, in bytes (FRAMEPIPE_MAX_MESSAGE_BYTES). Default 8388608.")
    var maxMessageBytes: Int?
    @Option(help: "Seconds between per-stream progress log lines (FRAMEPIPE_PROGRESS_INTERVAL). Default 10.")
    var progressInterval: Double?
    @Option(help: "PEM certificate chain; with --tls-key serves https and wss (FRAMEPIPE_TLS_CERT).")
    var tlsCert: String?
    @Option(help: "PEM private key for --tls-cert (FRAMEPIPE_TLS_KEY).")
    var tlsKey: String?
    @Option(help: "A browser origin (scheme://host[:port]) allowed to open WebSockets besides the relay's own; repeatable (FRAMEPIPE_ALLOWED_ORIGINS, comma-separated).")
    var allowedOrigin: [String] = []
    @Option(help: "trace, debug, info, notice, warning, error or critical (FRAMEPIPE_LOG_LEVEL). Default info.")
    var logLevel: String?
    @Option(help: "File holding the HS256 secret (at least 32 bytes) tokens are verified with (FRAMEPIPE_JWT_SECRET_FILE).")
    var jwtSecretFile: String?
    @Option(help: "PEM P-256 public key ES256 tokens are verified with (FRAMEPIPE_JWT_PUBLIC_KEY).")
    var jwtPublicKey: String?
    @Option(help: "An identity provider's signing keys (RS256/ES256) as a JWKS file; turns auth on (FRAMEPIPE_JWKS_FILE).")
    var jwksFile: String?
    @Option(help: "The same, fetched from the provider (https://.../certs) at start and every --jwks-refresh seconds; turns auth on (FRAMEPIPE_JWKS_URL).")
    var jwksUrl: String?
    @Option(help: "Seconds between JWKS fetches (FRAMEPIPE_JWKS_REFRESH). Default 600.")
    var jwksRefresh: Double?
    @Option(help: "Seconds after a JWKS fetch before a token naming an unknown key may cause another (FRAMEPIPE_JWKS_COOLDOWN). Default 30.")
    var jwksCooldown: Double?
    @Option(help: "The iss every token must carry (FRAMEPIPE_JWT_ISSUER).")
    var jwtIssuer: String?
    @Option(help: "A value the token's aud must contain (FRAMEPIPE_JWT_AUDIENCE).")
    var jwtAudience: String?
    @Option(help: "Dot path of the claim holding the role(s), e.g. realm_access.roles (FRAMEPIPE_JWT_ROLE_CLAIM). Default role.")
    var jwtRoleClaim: String?
    @Option(help: "The role claim's value that means viewer (FRAMEPIPE_JWT_VIEWER_ROLE). Default viewer.")
    var jwtViewerRole: String?
    @Option(help: "The role claim's value that means streamer (FRAMEPIPE_JWT_STREAMER_ROLE). Default streamer.")
    var jwtStreamerRole: String?
    @Option(help: "Dot path of the claim listing the streams (array, or space/comma-separated) (FRAMEPIPE_JWT_STREAMS_CLAIM). Default streams.")
    var jwtStreamsClaim: String?
    @Option(help: "JSON-lines file of revoked tokens and subjects (framepipe revoke appends to it); reloaded within a second of a change (FRAMEPIPE_REVOCATION_FILE).")
    var revocationFile: String?
    @Option(help: "Seconds before a socket's token expires that it is sent token_expiring (FRAMEPIPE_TOKEN_EXPIRY_WARNING). Default 30.")
    var tokenExpiryWarning: Double?
    @Option(help: "A reverse proxy (CIDR or address) whose Forwarded/X-Forwarded-* headers name the real client; repeatable (FRAMEPIPE_TRUSTED_PROXY, comma-separated).")
    var trustedProxy: [String] = []
    @Option(help: "Append an audit trail of sessions and refusals to this file as JSON lines; reopened on SIGHUP (FRAMEPIPE_AUDIT_LOG).")
    var auditLog: String?
    @Flag(help: "Allow listening beyond loopback with auth off (FRAMEPIPE_INSECURE=1), e.g. behind a proxy that does auth.")
    var insecure = false
    @Option(help: "Live streams at once; 0 = no limit (FRAMEPIPE_MAX_STREAMS). Default 256.")
    var maxStreams: Int?
    @Option(help: "Connected viewers in all; 0 = no limit (FRAMEPIPE_MAX_VIEWERS). Default 2000.")
    var maxViewers: Int?
    @Option(help: "Viewers connected with one token; 0 = no limit (FRAMEPIPE_MAX_VIEWERS_PER_TOKEN). Default 20.")
    var maxViewersPerToken: Int?
    @Option(help: "Connections from one client address; 0 = no limit (FRAMEPIPE_MAX_CONNECTIONS_PER_ADDRESS). Default 64.")
    var maxConnectionsPerAddress: Int?
    @Option(help: "WebSocket upgrades a second from one address; 0 = no limit (FRAMEPIPE_UPGRADE_RATE_PER_ADDRESS). Default 10.")
    var upgradeRatePerAddress: Double?
    @Option(help: "Messages a second one streamer may send; 0 = no limit (FRAMEPIPE_MAX_STREAM_FPS). Default 60.")
    var maxStreamFps: Double?
    @Option(help: "Seconds a connection has to send its request headers (FRAMEPIPE_HANDSHAKE_TIMEOUT). Default 10.")
    var handshakeTimeout: Double?

    @Option(help: "Join a cluster of nodes through this Redis: redis://[[user]:password@]host[:port][/db] or rediss:// for TLS (FRAMEPIPE_REDIS_URL). Default: run alone.")
    var redis: String?
    @Option(help: "This node's name in the cluster, 1-64 of A-Z a-z 0-9 . _ - (FRAMEPIPE_NODE_ID). Default <hostname>-<random>.")
    var nodeId: String?
    @Option(help: "Seconds without a node's heartbeat before its streams end everywhere with node_lost (FRAMEPIPE_NODE_TIMEOUT). Default 5.")
    var nodeTimeout: Double?
    @Option(help: "PEM CA certificate(s) a rediss:// server is verified against instead of the system's roots (FRAMEPIPE_REDIS_CA_FILE).")
    var redisCa: String?

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        func value<T>(_ flag: T?, _ name: String, _ parse: (String) -> T?) throws -> T? {
            if let flag { return flag }
            guard let raw = env[name] else { return nil }
            guard let parsed = parse(raw) else { throw ValidationError("\(name)=\(raw) is not a valid value") }
            return parsed
        }
        func seconds(_ flag: Double?, _ name: String, default fallback: Duration) throws -> Duration {
            guard let s = try value(flag, name, Double.init) else { return fallback }
            guard s > 0, s.isFinite else { throw ValidationError("\(name.lowercased()) must be a positive number of seconds, got \(s)") }
            return .milliseconds(Int64(s * 1000))
        }
        let defaults = RelayConfiguration()
        var c = RelayConfiguration()
        c.host = try value(host, "FRAMEPIPE_HOST", { $0 }) ?? defaults.host
        c.port = try value(port, "FRAMEPIPE_PORT", Int.init) ?? defaults.port
        guard (0...65535).contains(c.port) else { throw ValidationError("port must be 0-65535, got \(c.port)") }
        c.pipeline = try value(pipeline, "FRAMEPIPE_PIPELINE", { $0 })
        c.viewerSendTimeout = try seconds(viewerSendTimeout, "FRAMEPIPE_VIEWER_SEND_TIMEOUT", default: defaults.viewerSendTimeout)
        c.idleWarning = try seconds(idleWarning, "FRAMEPIPE_IDLE_WARNING", default: defaults.idleWarning)
        c.idleTimeout = try seconds(idleTimeout, "FRAMEPIPE_IDLE_TIMEOUT", default: defaults.idleTimeout)
        guard c.idleWarning < c.idleTimeout else { throw ValidationError("idle-warning must be shorter than idle-timeout") }
        c.pingInterval = try seconds(pingInterval, "FRAMEPIPE_PING_INTERVAL", default: defaults.pingInterval)
        c.pingTimeout = try seconds(pingTimeout, "FRAMEPIPE_PING_TIMEOUT", default: defaults.pingTimeout)
        c.progressInterval = try seconds(progressInterval, "FRAMEPIPE_PROGRESS_INTERVAL", default: defaults.progressInterval)
        c.maxMessageBytes = try value(maxMessageBytes, "FRAMEPIPE_MAX_MESSAGE_BYTES", Int.init) ?? defaults.maxMessageBytes
        guard (1024...(256 << 20)).contains(c.maxMessageBytes) else { throw ValidationError("max-message-bytes must be 1024-268435456") }
        c.tlsCertificatePath = try value(tlsCert, "FRAMEPIPE_TLS_CERT", { $0 })
        c.tlsKeyPath = try value(tlsKey, "FRAMEPIPE_TLS_KEY", { $0 })
        guard (c.tlsCertificatePath == nil) == (c.tlsKeyPath == nil) else {
            throw ValidationError("--tls-cert and --tls-key go together")
        }
        let origins = allowedOrigin.isEmpty ? (env["FRAMEPIPE_ALLOWED_ORIGINS"].map { $0.split(separator: ",").map(String.init) } ?? []) : allowedOrigin
        for origin in origins where OriginPolicy.authority(of: origin.lowercased()) == nil {
            throw ValidationError("allowed origin \(origin) must look like https://host[:port]")
        }
        c.originPolicy = OriginPolicy(allowedOrigins: origins)
        c.auth = try authSettings(env: env)
        c.insecure = insecure || env["FRAMEPIPE_INSECURE"] == "1"
        let proxies = trustedProxy.isEmpty ? (env["FRAMEPIPE_TRUSTED_PROXY"].map { $0.split(separator: ",").map(String.init) } ?? []) : trustedProxy
        c.trustedProxies = TrustedProxies(try proxies.map { text in
            guard let range = TrustedProxies.Range(text.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("--trusted-proxy \(text) must be an IP address or a CIDR range such as 10.0.0.0/8 or fd00::/8")
            }
            return range
        })
        c.auditLogPath = try value(auditLog, "FRAMEPIPE_AUDIT_LOG", { $0 })
        func count(_ flag: Int?, _ name: String, default fallback: Int) throws -> Int {
            let v = try value(flag, name, Int.init) ?? fallback
            guard v >= 0 else { throw ValidationError("\(flagName(name)) must be 0 or more, got \(v)") }
            return v
        }
        func rate(_ flag: Double?, _ name: String, default fallback: Double) throws -> Double {
            let v = try value(flag, name, Double.init) ?? fallback
            guard v >= 0, v.isFinite else { throw ValidationError("\(flagName(name)) must be 0 or more, got \(v)") }
            return v
        }
        let limitDefaults = RelayLimits()
        c.limits.maxStreams = try count(maxStreams, "FRAMEPIPE_MAX_STREAMS", default: limitDefaults.maxStreams)
        c.limits.maxViewers = try count(maxViewers, "FRAMEPIPE_MAX_VIEWERS", default: limitDefaults.maxViewers)
        c.limits.maxViewersPerToken = try count(maxViewersPerToken, "FRAMEPIPE_MAX_VIEWERS_PER_TOKEN", default: limitDefaults.maxViewersPerToken)
        c.limits.maxConnectionsPerAddress = try count(maxConnectionsPerAddress, "FRAMEPIPE_MAX_CONNECTIONS_PER_ADDRESS",
                                                      default: limitDefaults.maxConnectionsPerAddress)
        c.limits.upgradesPerSecondPerAddress = try rate(upgradeRatePerAddress, "FRAMEPIPE_UPGRADE_RATE_PER_ADDRESS",
                                                        default: limitDefaults.upgradesPerSecondPerAddress)
        c.limits.maxStreamMessagesPerSecond = try rate(maxStreamFps, "FRAMEPIPE_MAX_STREAM_FPS", default: limitDefaults.maxStreamMessagesPerSecond)
        c.limits.handshakeTimeout = try seconds(handshakeTimeout, "FRAMEPIPE_HANDSHAKE_TIMEOUT", default: limitDefaults.handshakeTimeout)
        if let url = try value(redis, "FRAMEPIPE_REDIS_URL", { $0 }) {
            var cluster = ClusterSettings(redis: try RedisURL(url))
            if let id = try value(nodeId, "FRAMEPIPE_NODE_ID", { $0 }) {
                guard ClusterSettings.isValidNodeID(id) else { throw ValidationError("node id must be 1-64 characters of A-Z a-z 0-9 . _ -, got \"\(id)\"") }
                cluster.nodeID = id
            }
            cluster.nodeTimeout = try seconds(nodeTimeout, "FRAMEPIPE_NODE_TIMEOUT", default: cluster.nodeTimeout)
            guard cluster.nodeTimeout >= .milliseconds(300) else { throw ValidationError("node-timeout must be at least 0.3 seconds") }
            if let ca = try value(redisCa, "FRAMEPIPE_REDIS_CA_FILE", { $0 }) {
                guard cluster.redis.useTLS else { throw ValidationError("--redis-ca needs a rediss:// URL") }
                cluster.redisCAFile = ca
                _ = try cluster.tlsConfiguration()
            }
            c.cluster = cluster
        } else if nodeId != nil || nodeTimeout != nil || redisCa != nil {
            throw ValidationError("--node-id, --node-timeout and --redis-ca need --redis")
        }
        let levelName = try value(logLevel, "FRAMEPIPE_LOG_LEVEL", { $0 }) ?? "info"
        guard let level = Logger.Level(rawValue: levelName) else { throw ValidationError("unknown log level \(levelName)") }

        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "framepipe")
        let file = try value(config, "FRAMEPIPE_CONFIG", { $0 }) ?? "pipelines.json"
        let pipelines: PipelineConfig
        do {
            pipelines = try ConfigFile.load(path: file, registry: Framepipe.registry)
        } catch {
            ConsoleOutput.err("\(error)")
            throw ExitCode(1)
        }
        do {
            try await RelayServer(configuration: c, pipelines: pipelines, logger: logger).run()
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

    /// `FRAMEPIPE_MAX_STREAMS` -> `--max-streams (FRAMEPIPE_MAX_STREAMS)`, for messages.
    private func flagName(_ variable: String) -> String {
        "--" + variable.dropFirst("FRAMEPIPE_".count).lowercased().replacingOccurrences(of: "_", with: "-") + " (\(variable))"
    }

    private func authSettings(env: [String: String]) throws -> AuthSettings {
        var settings = AuthSettings()
        if let path = jwtSecretFile ?? env["FRAMEPIPE_JWT_SECRET_FILE"] {
            settings.hmacSecret = try KeyFile.secret(at: path)
        }
        if let path = jwtPublicKey ?? env["FRAMEPIPE_JWT_PUBLIC_KEY"] {
            settings.ecdsaPublicKeyPEM = try KeyFile.text(at: path)
        }
        settings.jwksFile = jwksFile ?? env["FRAMEPIPE_JWKS_FILE"]
        settings.jwksURL = jwksUrl ?? env["FRAMEPIPE_JWKS_URL"]
        if settings.jwksFile != nil, settings.jwksURL != nil { throw ValidationError("give one of --jwks-file and --jwks-url") }
        if let url = settings.jwksURL, !(url.hasPrefix("https://") || url.hasPrefix("http://")) {
            throw ValidationError("--jwks-url must be an http:// or https:// URL, got \(url)")
        }
        func seconds(_ flag: Double?, _ name: String) throws -> Duration? {
            guard let raw = flag.map({ "\($0)" }) ?? env[name] else { return nil }
            guard let s = Double(raw), s > 0, s.isFinite else { throw ValidationError("\(flagName(name)) must be a positive number of seconds, got \(raw)") }
            return .milliseconds(Int64(s * 1000))
        }
        settings.jwksRefresh = try seconds(jwksRefresh, "FRAMEPIPE_JWKS_REFRESH") ?? settings.jwksRefresh
        settings.jwksCooldown = try seconds(jwksCooldown, "FRAMEPIPE_JWKS_COOLDOWN") ?? settings.jwksCooldown
        settings.issuer = jwtIssuer ?? env["FRAMEPIPE_JWT_ISSUER"]
        settings.audience = jwtAudience ?? env["FRAMEPIPE_JWT_AUDIENCE"]
        settings.claims.role = jwtRoleClaim ?? env["FRAMEPIPE_JWT_ROLE_CLAIM"] ?? settings.claims.role
        settings.claims.viewerRole = jwtViewerRole ?? env["FRAMEPIPE_JWT_VIEWER_ROLE"] ?? settings.claims.viewerRole
        settings.claims.streamerRole = jwtStreamerRole ?? env["FRAMEPIPE_JWT_STREAMER_ROLE"] ?? settings.claims.streamerRole
        settings.claims.streams = jwtStreamsClaim ?? env["FRAMEPIPE_JWT_STREAMS_CLAIM"] ?? settings.claims.streams
        settings.revocationFile = revocationFile ?? env["FRAMEPIPE_REVOCATION_FILE"]
        settings.expiryWarning = try seconds(tokenExpiryWarning, "FRAMEPIPE_TOKEN_EXPIRY_WARNING") ?? settings.expiryWarning
        if !settings.isEnabled, settings.revocationFile != nil {
            throw ValidationError("--revocation-file needs auth (--jwt-secret-file, --jwt-public-key, --jwks-file or --jwks-url)")
        }
        return settings
    }
}
