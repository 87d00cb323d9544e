import Crypto
import Foundation

/// The `X-Framepipe-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256>`
/// over `"<t>.<body>"`, as Stripe signs its webhooks.
///
/// Signing the timestamp with the body lets a receiver refuse a replayed
/// request (older than its tolerance) as well as a forged one; `v1` names
/// the scheme so it can change without breaking receivers.
public enum WebhookSignature {
    public static let header = "X-Framepipe-Signature"

    public static func sign(body: String, timestamp: Int, secret: [UInt8]) -> String {
        "t=\(timestamp),v1=\(mac(body: body, timestamp: timestamp, secret: secret))"
    }

    /// What a receiver checks: the MAC matches (compared in constant time)
    /// and the timestamp is within `tolerance` seconds of `now`.
    public static func verify(header: String, body: String, secret: [UInt8], now: Int, tolerance: Int = 300) -> Bool {
        var timestamp: Int?
        var given: String?
        for part in header.split(separator: ",") {
            if part.hasPrefix("t=") { timestamp = Int(part.dropFirst(2)) }
            if part.hasPrefix("v1=") { given = String(part.dropFirst(3)) }
        }
        guard let timestamp, let given, abs(now - timestamp) <= tolerance else { return false }
        let expected = Array(mac(body: body, timestamp: timestamp, secret: secret).utf8)
        let actual = Array(given.utf8)
        guard expected.count == actual.count else { return false }
        return zip(expected, actual).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    private static func mac(body: String, timestamp: Int, secret: [UInt8]) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Array("\(timestamp).\(body)".utf8), using: SymmetricKey(data: secret))
        return code.map { String(format: "%02x", $0) }.joined()
    }
}
