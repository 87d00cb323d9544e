/// Where a Redis server is and how to log in: `redis://[[user]:password@]host[:port][/db]`,
/// or `rediss://` for TLS.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var useTLS: Bool
    public var username: String?
    public var password: String?
    public var database: Int

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
        var rest = Substring(text)
        if rest.hasPrefix("redis://") {
            useTLS = false
            rest = rest.dropFirst("redis://".count)
        } else if rest.hasPrefix("rediss://") {
            useTLS = true
            rest = rest.dropFirst("rediss://".count)
        } else {
            throw invalid("must start with redis:// or rediss://")
        }
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
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            let path = rest[rest.index(after: slash)...]
            if path.isEmpty {
                database = 0
            } else {
                guard let db = Int(path), db >= 0 else { throw invalid("database must be a number 0 or more, got \"\(path)\"") }
                database = db
            }
        } else {
            authority = rest
            database = 0
        }
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
        host = String(hostPart)
        if let portPart {
            guard let p = Int(portPart), (1...65535).contains(p) else { throw invalid("port must be 1-65535, got \"\(portPart)\"") }
            port = p
        } else {
            port = 6379
        }
    }

    /// The URL without its password, for logs and errors.
    public var description: String {
        let scheme = useTLS ? "rediss" : "redis"
        let login = password == nil ? "" : "\(username ?? ""):***@"
        let h = host.contains(":") ? "[\(host)]" : host
        return "\(scheme)://\(login)\(h):\(port)/\(database)"
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
