import Foundation
import JWTKit

/// Signs access tokens for `framepipe token`, with the HS256 secret or the
/// ES256 private key the relay's verifying key belongs to.
package struct TokenMinter {
    package enum Key {
        case hs256([UInt8])
        case es256(privateKeyPEM: String)
    }

    let key: Key

    package init(key: Key) { self.key = key }

    package func mint(subject: String, role: TokenRole, streams: [String], ttl: Duration, now: Date = Date()) async throws -> String {
        let keys = JWTKeyCollection()
        switch key {
        case .hs256(let secret):
            await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        case .es256(let pem):
            await keys.add(ecdsa: try ES256PrivateKey(pem: pem))
        }
        let claims = AccessClaims(
            sub: .init(value: subject), exp: .init(value: now.addingTimeInterval(ttl.seconds)), iat: .init(value: now),
            jti: .init(value: UUID().uuidString.lowercased()), role: role, streams: streams)
        return try await keys.sign(claims)
    }
}
