/// Where a Redis server is and how to log in: `redis://[[user]:password@]host[:port][/db]`,
/// or `rediss://` for TLS; or a replicated Redis found through Sentinel:
/// `redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/master-name[/db]`
/// (`rediss+sentinel://` for TLS to sentinels and master alike); or a Redis
/// Cluster, found from any of its nodes: `redis+cluster://[[user]:password@]host[:port][,host[:port]…]`
/// (`rediss+cluster://` for TLS to every node).
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    /// One `host:port`.
    public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
        public var description: String { (host.contains(":") ? "[\(host)]" : host) + ":\(port)" }
    }

    /// The server; for a Sentinel URL, the first sentinel until a master is found.
    public var host: String
    public var port: Int
    public var useTLS: Bool
    /// The master's login (sentinels are asked without one).
    public var username: String?
    public var password: String?
    public var database: Int
    /// For a Sentinel URL: the sentinels to ask, in order, and the master's name; empty otherwise.
    public var sentinels: [Endpoint] = []
    public var masterName: String?
    /// For a Redis Cluster URL: the nodes asked, in turn, for the cluster's shards; empty otherwise.
    public var clusterSeeds: [Endpoint] = []

    /// True when the server is found through Sentinel (and found again after a failover).
    public var usesSentinel: Bool { masterName != nil }

    /// True for a Redis Cluster (`redis+cluster://`).
    public var usesCluster: Bool { !clusterSeeds.isEmpty }

    public static let defaultSentinelPort = 26379

    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    public init(host: String, port: Int = 6379, useTLS: Bool = false, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.useTLS = useTLS
        self.username = username
        self.password = password
        self.database = database
    }

    public init(_ text: String) throws(Invalid) {
        func invalid(_ why: String) -> Invalid { Invalid(reason: "redis URL \(Self.redacted(text)): \(why)") }
        let schemes = [("redis://", false, false, false), ("rediss://", true, false, false), ("redis+sentinel://", false, true, false),
                       ("rediss+sentinel://", true, true, false), ("redis+cluster://", false, false, true), ("rediss+cluster://", true, false, true)]
        guard let (scheme, tls, sentinel, cluster) = schemes.first(where: { text.hasPrefix($0.0) }) else {
            throw invalid("must start with redis://, rediss://, redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster://")
        }
        useTLS = tls
        var rest = Substring(text).dropFirst(scheme.count)
        username = nil
        password = nil
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = credentials[..<colon]
                username = user.isEmpty ? nil : try Self.percentDecoded(user, invalid("bad %-escape in the user name"))
                password = try Self.percentDecoded(credentials[credentials.index(after: colon)...], invalid("bad %-escape in the password"))
            } else {
                // redis://secret@host is how many tools write a password-only login.
                password = try Self.percentDecoded(credentials, invalid("bad %-escape in the password"))
            }
        }
        let authority: Substring
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        } else {
            authority = rest
        }
        if sentinel {
            // The master's name, then optionally its database.
            let parts = path.split(separator: "/", omittingEmptySubsequences: false)
            guard let name = parts.first, !name.isEmpty else { throw invalid("name the master after the sentinels: redis+sentinel://host:26379/mymaster") }
            guard parts.count <= 2 else { throw invalid("unexpected \"\(path)\" after the sentinels; expected /master-name[/db]") }
            masterName = String(name)
            path = parts.count == 2 ? parts[1] : ""
            var endpoints: [Endpoint] = []
            for item in authority.split(separator: ",", omittingEmptySubsequences: false) {
                endpoints.append(try Self.endpoint(item, defaultPort: Self.defaultSentinelPort, invalid))
            }
            sentinels = endpoints
            (host, port) = (endpoints[0].host, endpoints[0].port)
        } else if cluster {
            var endpoints: [Endpoint] = []
            for item in authority.split(separator: ",", omittingEmptySubsequences: false) {
                endpoints.append(try Self.endpoint(item, defaultPort: 6379, invalid))
            }
            clusterSeeds = endpoints
            (host, port) = (endpoints[0].host, endpoints[0].port)
            // A Redis Cluster has one database.
            guard path.isEmpty || path == "0" else { throw invalid("a Redis Cluster has only database 0, got \"\(path)\"") }
        } else {
            let endpoint = try Self.endpoint(authority, defaultPort: 6379, invalid)
            (host, port) = (endpoint.host, endpoint.port)
        }
        if path.isEmpty {
            database = 0
        } else {
            guard let db = Int(path), db >= 0 else { throw invalid("database must be a number 0 or more, got \"\(path)\"") }
            database = db
        }
    }

    /// A concrete server: this URL's login and database at `endpoint` (a master a sentinel named).
    public func at(_ endpoint: Endpoint) -> RedisURL {
        RedisURL(host: endpoint.host, port: endpoint.port, useTLS: useTLS, username: username, password: password, database: database)
    }

    private static func endpoint(_ authority: Substring, defaultPort: Int, _ invalid: (String) -> Invalid) throws(Invalid) -> Endpoint {
        var hostPart = authority
        var portPart: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw invalid("unclosed [ in an IPv6 address") }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { portPart = after.dropFirst() } else if !after.isEmpty { throw invalid("unexpected \"\(after)\" after the address") }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portPart = authority[authority.index(after: colon)...]
        }
        guard !hostPart.isEmpty else { throw invalid("no host") }
        guard let portPart else { return Endpoint(host: String(hostPart), port: defaultPort) }
        guard let p = Int(portPart), (1...65535).contains(p) else { throw invalid("port must be 1-65535, got \"\(portPart)\"") }
        return Endpoint(host: String(hostPart), port: p)
    }

    /// The URL without its password, for logs and errors.
    public var description: String {
        let login = password == nil ? "" : "\(username ?? ""):***@"
        if usesCluster {
            return "\(useTLS ? "rediss" : "redis")+cluster://\(login)\(clusterSeeds.map(\.description).joined(separator: ","))"
        }
        if let masterName {
            return "\(useTLS ? "rediss" : "redis")+sentinel://\(login)\(sentinels.map(\.description).joined(separator: ","))/\(masterName)/\(database)"
        }
        return "\(useTLS ? "rediss" : "redis")://\(login)\(Endpoint(host: host, port: port))/\(database)"
    }

    private static func redacted(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@"), let colon = text.firstIndex(of: ":"), colon < at else { return text }
        return String(text[..<colon]) + "://***" + String(text[at...])
    }

    private static func percentDecoded(_ s: Substring, _ error: Invalid) throws(Invalid) -> String {
        var bytes: [UInt8] = []
        var i = s.utf8.startIndex
        let utf8 = s.utf8
        while i < utf8.endIndex {
            let b = utf8[i]
            if b == UInt8(ascii: "%") {
                let h1 = utf8.index(after: i)
                guard h1 < utf8.endIndex else { throw error }
                let h2 = utf8.index(after: h1)
                guard h2 < utf8.endIndex, let hi = hex(utf8[h1]), let lo = hex(utf8[h2]) else { throw error }
                bytes.append(hi << 4 | lo)
                i = utf8.index(after: h2)
            } else {
                bytes.append(b)
                i = utf8.index(after: i)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x41 + 10
        case 0x61...0x66: return b - 0x61 + 10
        default: return nil
        }
    }
}
