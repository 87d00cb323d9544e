import NIOCore

/// The reverse proxies (`--trusted-proxy CIDR`, repeatable) whose
/// `Forwarded` / `X-Forwarded-*` headers the relay believes. From anyone
/// else those headers are ignored: a client cannot claim another address.
public struct TrustedProxies: Sendable, Equatable {
    /// One address range: an IPv4 or IPv6 network and its prefix length.
    public struct Range: Sendable, Equatable, CustomStringConvertible {
        let network: [UInt8]
        let prefixLength: Int
        public let description: String

        /// `10.0.0.0/8`, `127.0.0.1` (a single address), `fd00::/8`, `::1`.
        public init?(_ text: String) {
            let parts = text.split(separator: "/", maxSplits: 1)
            guard let first = parts.first, let bytes = Self.bytes(of: String(first)) else { return nil }
            let length: Int
            if parts.count == 2 {
                guard let n = Int(parts[1]), (0...bytes.count * 8).contains(n) else { return nil }
                length = n
            } else {
                length = bytes.count * 8
            }
            network = bytes
            prefixLength = length
            description = text
        }

        func contains(_ address: [UInt8]) -> Bool {
            guard address.count == network.count else { return false }
            var left = prefixLength
            for (a, n) in zip(address, network) {
                if left <= 0 { return true }
                let mask: UInt8 = left >= 8 ? 0xFF : ~(0xFF >> UInt8(left))
                if a & mask != n & mask { return false }
                left -= 8
            }
            return true
        }

        /// The 4 or 16 bytes of an IP address; an IPv4-mapped IPv6 address is its IPv4 address.
        static func bytes(of text: String) -> [UInt8]? {
            guard let address = try? SocketAddress(ipAddress: text, port: 0) else { return nil }
            switch address {
            case .v4(let v4):
                return withUnsafeBytes(of: v4.address.sin_addr.s_addr) { Array($0) }
            case .v6(let v6):
                let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
                if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF { return Array(bytes[12...]) }
                return bytes
            default:
                return nil
            }
        }
    }

    public var ranges: [Range]

    public init(_ ranges: [Range] = []) {
        self.ranges = ranges
    }

    public var isEmpty: Bool { ranges.isEmpty }

    /// Whether `address` (an IP address as text) is one of the trusted proxies.
    public func trusts(_ address: String) -> Bool {
        guard !ranges.isEmpty, let bytes = Range.bytes(of: address) else { return false }
        return ranges.contains { $0.contains(bytes) }
    }
}
