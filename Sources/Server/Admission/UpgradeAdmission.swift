import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// Decides whether a WebSocket upgrade may go ahead, before
/// hummingbird-websocket sees it (it could only refuse with a bare 400):
/// browser origin (403), upgrade rate per address (429), token (401/403),
/// and the stream, viewer and per-token limits (503/429).
final class UpgradeAdmission: Sendable {
    enum Decision: Sendable {
        case admit(AccessGrant?)
        case refuse(HTTPResponseStatus, reason: String)
    }

    /// Which socket a request asks for.
    enum Target: Equatable {
        case streamer(String)
        case viewer(requested: [String]?)
        case other
    }

    let originPolicy: OriginPolicy
    let authority: TokenAuthority?
    let limits: RelayLimits
    let ledger: AddressLedger
    let hub: ViewerHub
    let metrics: RelayMetrics
    let logger: Logger

    init(originPolicy: OriginPolicy, authority: TokenAuthority?, limits: RelayLimits, ledger: AddressLedger,
         hub: ViewerHub, metrics: RelayMetrics, logger: Logger) {
        self.originPolicy = originPolicy
        self.authority = authority
        self.limits = limits
        self.ledger = ledger
        self.hub = hub
        self.metrics = metrics
        self.logger = logger
    }

    func decide(head: HTTPRequestHead, address: String) async -> Decision {
        let target = Self.target(of: head.uri)
        if let reason = originPolicy.refusal(origin: head.headers.first(name: "origin"), host: head.headers.first(name: "host")) {
            metrics.upgradeRefused("origin")
            return .refuse(.forbidden, reason: reason)
        }
        guard ledger.takeUpgrade(from: address) else {
            metrics.limitHit("upgrade_rate")
            return .refuse(.tooManyRequests, reason: "too many WebSocket upgrades from \(address); slow down")
        }
        var grant: AccessGrant?
        if let authority, target != .other {
            let token = TokenLocation.token(authorization: head.headers.first(name: "authorization"),
                                            webSocketProtocols: head.headers.first(name: "sec-websocket-protocol"), uri: head.uri)
            do throws(AuthFailure) {
                guard let token else { throw AuthFailure(kind: .missing, reason: "a token is required") }
                let verified = try await authority.verify(token)
                try Self.authorize(verified, for: target)
                grant = verified
            } catch {
                metrics.upgradeRefused(error.kind.rawValue)
                return .refuse(HTTPResponseStatus(statusCode: error.status.code), reason: error.reason)
            }
        }
        let counts = hub.admissionCounts(streamID: { if case .streamer(let id) = target { id } else { nil } }(),
                                         tokenID: grant?.tokenID)
        switch target {
        case .streamer:
            if !counts.streamIsLive, limits.maxStreams.isReached(by: counts.streams) {
                metrics.limitHit("streams")
                return .refuse(.serviceUnavailable, reason: "the relay has its maximum of \(limits.maxStreams) live streams")
            }
        case .viewer:
            if limits.maxViewers.isReached(by: counts.viewers) {
                metrics.limitHit("viewers")
                return .refuse(.serviceUnavailable, reason: "the relay has its maximum of \(limits.maxViewers) viewers")
            }
            if grant != nil, limits.maxViewersPerToken.isReached(by: counts.tokenViewers) {
                metrics.limitHit("viewers_per_token")
                return .refuse(.tooManyRequests, reason: "this token already has \(limits.maxViewersPerToken) viewers connected")
            }
        case .other:
            break
        }
        return .admit(grant)
    }

    /// Whether a valid token covers what the request asks for.
    static func authorize(_ grant: AccessGrant, for target: Target) throws(AuthFailure) {
        switch target {
        case .streamer(let id):
            guard grant.role == .streamer else { throw AuthFailure(kind: .wrongRole, reason: "a viewer token cannot publish a stream") }
            guard grant.scope.allows(id) else { throw AuthFailure(kind: .outOfScope, reason: "the token does not cover stream \(id)") }
        case .viewer(let requested):
            guard grant.role == .viewer else { throw AuthFailure(kind: .wrongRole, reason: "a streamer token cannot watch") }
            if let outside = requested?.first(where: { !grant.scope.allows($0) }) {
                throw AuthFailure(kind: .outOfScope, reason: "the token does not cover stream \(outside)")
            }
        case .other:
            break
        }
    }

    static func target(of uri: String) -> Target {
        let parts = uri.split(separator: "?", maxSplits: 1)
        let path = parts.first.map(String.init) ?? ""
        if path.hasPrefix("/ws/stream/") { return .streamer(String(path.dropFirst("/ws/stream/".count))) }
        if path == "/ws/viewer" {
            let items = parts.count > 1 ? URLComponents(string: "?" + parts[1])?.queryItems : nil
            let list = items?.first { $0.name == "streams" }?.value
            return .viewer(requested: list.flatMap { $0.isEmpty ? nil : $0.split(separator: ",").map(String.init) })
        }
        return .other
    }
}
