import Pipeline
import Cluster
import Access

/// Everything `framepipe serve` can be told, with every default in one
/// place: the CLI's flags and environment variables, the tests and a user's
/// own executable all build this struct.
public struct RelayConfiguration: Sendable {
    public var host: String
    /// 0 picks a free port (tests).
    public var port: Int
    /// Name of the pipeline to run; nil means the file's default.
    public var pipeline: String?
    /// A viewer whose link acknowledges nothing for this long (or 10 of its
    /// round trips, if longer) while frames wait is dropped.
    public var viewerSendTimeout: Duration
    /// A stream silent this long is logged and pinged.
    public var idleWarning: Duration
    /// A stream silent this long is closed with reason `timeout`.
    public var idleTimeout: Duration
    /// How often viewers are sent `{"type":"ping"}`.
    public var pingInterval: Duration
    /// A viewer that has not answered a ping within this long is dropped.
    public var pingTimeout: Duration
    /// Largest WebSocket message accepted (frames and reassembled messages).
    public var maxMessageBytes: Int
    /// How often each live stream logs a progress line.
    public var progressInterval: Duration
    /// A viewer losing more than this share of its frames over a window is marked slow.
    public var slowLossRatio: Double
    /// PEM certificate chain and key; with both set the server speaks https/wss.
    public var tlsCertificatePath: String?
    public var tlsKeyPath: String?
    /// Browser origins allowed to open WebSockets besides the relay's own.
    public var originPolicy: OriginPolicy
    /// Token verification keys; none means auth is off.
    public var auth: AuthSettings
    /// Allows listening beyond loopback with auth off.
    public var insecure: Bool
    /// Reverse proxies whose forwarding headers name the real client.
    public var trustedProxies: TrustedProxies
    /// JSON-lines audit trail of sessions and refusals; nil keeps none.
    public var auditLogPath: String?
    public var limits: RelayLimits
    /// Redis and this node's name when the relay runs as one of several
    /// nodes; nil runs it alone.
    public var cluster: ClusterSettings?
    /// Where events are posted; nil posts none.
    public var webhooks: WebhookSettings?
    /// After SIGTERM, how long `/readyz` says 503 while everything keeps
    /// streaming, before streams end with `shutdown` (a load balancer's check interval).
    public var drainDelay: Duration = .zero
    /// In a cluster, `/readyz` stays 200 while Redis is away (the node's own streams still work).
    public var readyWithoutRedis: Bool
    /// What tokens' `exp` and the revocation file's checks are counted on; tests give a clock they move.
    public var clock: any RelayClock = SystemRelayClock()
    /// `--viewer-compat patient_id`: viewers' messages name each stream as
    /// `patient_id` too, unless a viewer asks `compat=none` (docs/migrating.md).
    public var viewersNamePatient = false

    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        pipeline: String? = nil,
        viewerSendTimeout: Duration = .seconds(1),
        idleWarning: Duration = .seconds(10),
        idleTimeout: Duration = .seconds(15),
        pingInterval: Duration = .seconds(45),
        pingTimeout: Duration = .seconds(15),
        maxMessageBytes: Int = 8 << 20,
        progressInterval: Duration = .seconds(10),
        slowLossRatio: Double = 0.2,
        tlsCertificatePath: String? = nil,
        tlsKeyPath: String? = nil,
        originPolicy: OriginPolicy = OriginPolicy(),
        auth: AuthSettings = AuthSettings(),
        insecure: Bool = false,
        trustedProxies: TrustedProxies = TrustedProxies(),
        auditLogPath: String? = nil,
        limits: RelayLimits = RelayLimits(),
        cluster: ClusterSettings? = nil,
        readyWithoutRedis: Bool = false
    ) {
        self.host = host
        self.port = port
        self.pipeline = pipeline
        self.viewerSendTimeout = viewerSendTimeout
        self.idleWarning = idleWarning
        self.idleTimeout = idleTimeout
        self.pingInterval = pingInterval
        self.pingTimeout = pingTimeout
        self.maxMessageBytes = maxMessageBytes
        self.progressInterval = progressInterval
        self.slowLossRatio = slowLossRatio
        self.tlsCertificatePath = tlsCertificatePath
        self.tlsKeyPath = tlsKeyPath
        self.originPolicy = originPolicy
        self.auth = auth
        self.insecure = insecure
        self.trustedProxies = trustedProxies
        self.auditLogPath = auditLogPath
        self.limits = limits
        self.cluster = cluster
        self.readyWithoutRedis = readyWithoutRedis
    }

    public var usesTLS: Bool { tlsCertificatePath != nil && tlsKeyPath != nil }

    /// True for 127.0.0.0/8, ::1 and localhost: the only hosts a relay
    /// without auth listens on unless told `insecure`.
    public var listensOnLoopbackOnly: Bool {
        let h = host.lowercased()
        return h == "localhost" || h == "::1" || h == "[::1]" || h.hasPrefix("127.")
    }
}
