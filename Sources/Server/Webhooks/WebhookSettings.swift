import Pipeline

/// Where events are posted and how hard the relay tries (`--webhook`).
public struct WebhookSettings: Sendable {
    /// Each receives every event, in order, from a queue of its own, so a
    /// dead receiver never delays another.
    public var urls: [String]
    /// HMAC-SHA256 key of the `X-Framepipe-Signature` header.
    public var secret: [UInt8]
    /// Events waiting per receiver beyond this are dropped (and counted).
    public var queueDepth: Int
    /// Tries per event before it is given up (and counted as dropped).
    public var maxAttempts: Int
    /// The wait before the first retry; each later one doubles it, up to `maxRetryDelay`.
    public var firstRetryDelay: Duration
    public var maxRetryDelay: Duration
    /// One attempt's limit, connect to last byte.
    public var timeout: Duration

    public init(urls: [String], secret: [UInt8], queueDepth: Int = 1000, maxAttempts: Int = 6,
                firstRetryDelay: Duration = .milliseconds(500), maxRetryDelay: Duration = .seconds(30), timeout: Duration = .seconds(5)) {
        self.urls = urls
        self.secret = secret
        self.queueDepth = queueDepth
        self.maxAttempts = maxAttempts
        self.firstRetryDelay = firstRetryDelay
        self.maxRetryDelay = maxRetryDelay
        self.timeout = timeout
    }

    /// The waits between attempts: doubling from `firstRetryDelay` to `maxRetryDelay`, jittered.
    var backoff: RetryBackoff { RetryBackoff(first: firstRetryDelay, cap: maxRetryDelay) }
}
