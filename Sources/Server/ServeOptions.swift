import ArgumentParser

// `framepipe serve`'s options in the groups `--help` shows them in. Every
// option also reads FRAMEPIPE_ and its name in upper snake case
// (`ServeEnvironment`); every help text says its default.

struct ListeningOptions: ParsableArguments {
    @Option(help: "Address to listen on. Default 127.0.0.1 (loopback only). [FRAMEPIPE_HOST]")
    var host: String?
    @Option(help: "Port to listen on; 0 picks a free one. Default 8080. [FRAMEPIPE_PORT]")
    var port: Int?
    @Option(help: "PEM certificate chain; with --tls-key serves https and wss. Default: plain http. [FRAMEPIPE_TLS_CERT]")
    var tlsCert: String?
    @Option(help: "PEM private key for --tls-cert. Default: none. [FRAMEPIPE_TLS_KEY]")
    var tlsKey: String?
}

struct PipelineOptions: ParsableArguments {
    @Option(help: "Pipelines file; a relative path is read from the working directory. Default pipelines.json. [FRAMEPIPE_CONFIG]")
    var config: String?
    @Option(help: "Pipeline to run. Default: the file's \"default\". [FRAMEPIPE_PIPELINE]")
    var pipeline: String?
    @Option(help: "patient_id: viewers' messages also name each stream patient_id, as the relay framepipe replaces did (a viewer's ?compat=none opts out; docs/migrating.md). Default none. [FRAMEPIPE_VIEWER_COMPAT]")
    var viewerCompat: String?
}

struct TimeoutOptions: ParsableArguments {
    @Option(help: "Seconds a viewer's link may make no progress while frames wait before it is dropped (at least 10 of its round trips). Default 1. [FRAMEPIPE_VIEWER_SEND_TIMEOUT]")
    var viewerSendTimeout: Double?
    @Option(help: "Seconds of streamer silence before it is logged and pinged. Default 10. [FRAMEPIPE_IDLE_WARNING]")
    var idleWarning: Double?
    @Option(help: "Seconds of streamer silence before the stream is closed with reason timeout. Default 15. [FRAMEPIPE_IDLE_TIMEOUT]")
    var idleTimeout: Double?
    @Option(help: "Seconds between pings to viewers. Default 45. [FRAMEPIPE_PING_INTERVAL]")
    var pingInterval: Double?
    @Option(help: "Seconds a viewer has to answer a ping. Default 15. [FRAMEPIPE_PING_TIMEOUT]")
    var pingTimeout: Double?
    @Option(help: "Seconds after SIGTERM that /readyz answers 503 while streams still flow, before they end with shutdown. Default 0. [FRAMEPIPE_DRAIN_DELAY]")
    var drainDelay: Double?
    @Option(help: "Seconds a connection has to send its request headers. Default 10. [FRAMEPIPE_HANDSHAKE_TIMEOUT]")
    var handshakeTimeout: Double?
}

struct LimitOptions: ParsableArguments {
    @Option(help: "Largest WebSocket message accepted, in bytes. Default 8388608. [FRAMEPIPE_MAX_MESSAGE_BYTES]")
    var maxMessageBytes: Int?
    @Option(help: "Live streams at once; 0 = no limit. Default 256. [FRAMEPIPE_MAX_STREAMS]")
    var maxStreams: Int?
    @Option(help: "Connected viewers in all; 0 = no limit. Default 2000. [FRAMEPIPE_MAX_VIEWERS]")
    var maxViewers: Int?
    @Option(help: "Viewers connected with one token; 0 = no limit. Default 20. [FRAMEPIPE_MAX_VIEWERS_PER_TOKEN]")
    var maxViewersPerToken: Int?
    @Option(help: "Connections from one client address; 0 = no limit. Default 64. [FRAMEPIPE_MAX_CONNECTIONS_PER_ADDRESS]")
    var maxConnectionsPerAddress: Int?
    @Option(help: "WebSocket upgrades a second from one address; 0 = no limit. Default 10. [FRAMEPIPE_UPGRADE_RATE_PER_ADDRESS]")
    var upgradeRatePerAddress: Double?
    @Option(help: "Messages a second one streamer may send; 0 = no limit. Default 60. [FRAMEPIPE_MAX_STREAM_FPS]")
    var maxStreamFps: Double?
}

struct AccessOptions: ParsableArguments {
    @Option(help: "File holding the HS256 secret (at least 32 bytes) tokens are verified with; turns auth on. Default: none. [FRAMEPIPE_JWT_SECRET_FILE]")
    var jwtSecretFile: String?
    @Option(help: "PEM P-256 public key ES256 tokens are verified with; turns auth on. Default: none. [FRAMEPIPE_JWT_PUBLIC_KEY]")
    var jwtPublicKey: String?
    @Option(help: "An identity provider's signing keys (RS256/ES256) as a JWKS file; turns auth on. Default: none. [FRAMEPIPE_JWKS_FILE]")
    var jwksFile: String?
    @Option(help: "The same, fetched from the provider (https://…/certs); turns auth on. Default: none. [FRAMEPIPE_JWKS_URL]")
    var jwksUrl: String?
    @Option(help: "Seconds between JWKS fetches. Default 600. [FRAMEPIPE_JWKS_REFRESH]")
    var jwksRefresh: Double?
    @Option(help: "Seconds after a JWKS fetch before a token naming an unknown key may cause another. Default 30. [FRAMEPIPE_JWKS_COOLDOWN]")
    var jwksCooldown: Double?
    @Option(help: "The iss every token must carry. Default: not checked. [FRAMEPIPE_JWT_ISSUER]")
    var jwtIssuer: String?
    @Option(help: "A value the token's aud must contain. Default: not checked. [FRAMEPIPE_JWT_AUDIENCE]")
    var jwtAudience: String?
    @Option(help: "Dot path of the claim holding the role(s), e.g. realm_access.roles. Default role. [FRAMEPIPE_JWT_ROLE_CLAIM]")
    var jwtRoleClaim: String?
    @Option(help: "The role claim's value that means viewer. Default viewer. [FRAMEPIPE_JWT_VIEWER_ROLE]")
    var jwtViewerRole: String?
    @Option(help: "The role claim's value that means streamer. Default streamer. [FRAMEPIPE_JWT_STREAMER_ROLE]")
    var jwtStreamerRole: String?
    @Option(help: "The role claim's value that means admin (may POST /api/reload). Default admin. [FRAMEPIPE_JWT_ADMIN_ROLE]")
    var jwtAdminRole: String?
    @Option(help: "Dot path of the claim listing the streams (an array, or space/comma-separated). Default streams. [FRAMEPIPE_JWT_STREAMS_CLAIM]")
    var jwtStreamsClaim: String?
    @Option(help: "JSON-lines file of revoked tokens and subjects (framepipe revoke appends); reloaded on change. Default: none. [FRAMEPIPE_REVOCATION_FILE]")
    var revocationFile: String?
    @Option(help: "Seconds before a socket's token expires that it is sent token_expiring. Default 30. [FRAMEPIPE_TOKEN_EXPIRY_WARNING]")
    var tokenExpiryWarning: Double?
    @Option(help: "A browser origin (scheme://host[:port]) allowed to open WebSockets besides the relay's own; repeatable (the variable: comma-separated). Default: the relay's own only. [FRAMEPIPE_ALLOWED_ORIGIN]")
    var allowedOrigin: [String] = []
    @Option(help: "A reverse proxy (CIDR or address) whose Forwarded/X-Forwarded-* headers name the real client; repeatable (the variable: comma-separated). Default: none. [FRAMEPIPE_TRUSTED_PROXY]")
    var trustedProxy: [String] = []
    @Option(help: "Append an audit trail of sessions and refusals to this file as JSON lines; reopened on SIGHUP. Default: none. [FRAMEPIPE_AUDIT_LOG]")
    var auditLog: String?
    @Flag(help: "Allow listening beyond loopback with auth off (the variable: 1), e.g. behind a proxy that does auth. Default: off. [FRAMEPIPE_INSECURE]")
    var insecure = false
}

struct ClusterOptions: ParsableArguments {
    @Option(help: "Join a cluster through this Redis: redis://[[user]:password@]host[:port][/db], rediss:// for TLS, or redis+sentinel://host:port[,host:port…]/master-name[/db] (rediss+sentinel://) to follow a replicated Redis through Sentinel, or redis+cluster://host:port[,host:port…] (rediss+cluster://) for a Redis Cluster, with sharded pub/sub. Default: run alone. [FRAMEPIPE_REDIS]")
    var redis: String?
    @Option(help: "This node's name in the cluster, 1-64 of A-Z a-z 0-9 . _ -. Default <hostname>-<random>. [FRAMEPIPE_NODE_ID]")
    var nodeId: String?
    @Option(help: "Seconds without a node's heartbeat before its streams end everywhere with node_lost. Default 5. [FRAMEPIPE_NODE_TIMEOUT]")
    var nodeTimeout: Double?
    @Option(help: "PEM CA certificate(s) a rediss:// server is verified against. Default: the system's roots. [FRAMEPIPE_REDIS_CA]")
    var redisCa: String?
    @Flag(help: "Keep /readyz at 200 while Redis is away (the node's own streams still work; the variable: 1). Default: 503 until Redis is back. [FRAMEPIPE_READY_WITHOUT_REDIS]")
    var readyWithoutRedis = false
}

struct EventOptions: ParsableArguments {
    @Option(help: "POST signed JSON to this URL on stream_started, stream_ended, stream_idle and viewer_dropped; repeatable (the variable: comma-separated). Needs --webhook-secret-file. Default: none. [FRAMEPIPE_WEBHOOK]")
    var webhook: [String] = []
    @Option(help: "File holding the secret (at least 32 bytes) webhooks are signed with (X-Framepipe-Signature: t=…,v1=HMAC-SHA256). Default: none. [FRAMEPIPE_WEBHOOK_SECRET_FILE]")
    var webhookSecretFile: String?
}

struct LoggingOptions: ParsableArguments {
    @Option(help: "trace, debug, info, notice, warning, error or critical. Default info. [FRAMEPIPE_LOG_LEVEL]")
    var logLevel: String?
    @Option(help: "text (one line for a person) or json (one JSON object a line, metadata as fields, for a log shipper). Default text. [FRAMEPIPE_LOG_FORMAT]")
    var logFormat: String?
    @Option(help: "Seconds between per-stream progress log lines. Default 10. [FRAMEPIPE_PROGRESS_INTERVAL]")
    var progressInterval: Double?
}
