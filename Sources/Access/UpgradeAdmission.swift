import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Pipeline
import WireProtocol

/// Decides whether a WebSocket upgrade may go ahead, before
/// hummingbird-websocket sees it (it could only refuse with a bare 400):
/// browser origin (403), upgrade rate per address (429), token (401/403),
/// and the stream, viewer and per-token limits (503/429).
package final class UpgradeAdmission: Sendable {
    enum Decision: Sendable {
        case admit(AccessGrant?)
        case refuse(Refusal)
    }

    /// Which socket a request asks for. There is no "other": an upgrade to
    /// any other path is refused before anything else is looked at.
    package enum Target: Equatable {
        case streamer(String)
        case viewer(requested: [String]?)
    }

    let originPolicy: OriginPolicy
    package let trustedProxies: TrustedProxies
    /// Where refusals are logged and audited.
    let refusals: RefusalRecorder
    package let authority: TokenAuthority?
    package let limits: RelayLimits
    package let ledger: AddressLedger
    /// Its counts, and the streams it pulls from cameras (which take no other streamer).
    let relay: any AdmissionFacts
    package let metrics: any AccessMetrics
    package let logger: Logger
    /// What the handshake timeout counts on: the relay's clock, so a test moves it.
    package let clock: any RelayClock

    package init(originPolicy: OriginPolicy, trustedProxies: TrustedProxies = TrustedProxies(), refusals: RefusalRecorder,
         authority: TokenAuthority?, limits: RelayLimits, ledger: AddressLedger, relay: any AdmissionFacts, metrics: any AccessMetrics,
         clock: any RelayClock, logger: Logger) {
        self.originPolicy = originPolicy
        self.trustedProxies = trustedProxies
        self.refusals = refusals
        self.authority = authority
        self.limits = limits
        self.ledger = ledger
        self.relay = relay
        self.metrics = metrics
        self.clock = clock
        self.logger = logger
    }

    /// `client` is who sent it: the TCP peer, or behind a trusted proxy the
    /// client it names (whose upgrade rate counts, and whose host and scheme
    /// the origin check compares with).
    func decide(head: HTTPRequestHead, client: ForwardedClient) async -> Decision {
        let address = client.address
        // Every attempt counts, whatever path it names: a flood of bad
        // spellings is throttled like any other.
        guard ledger.takeUpgrade(from: address) else {
            metrics.limitHit("upgrade_rate")
            return .refuse(Refusal(status: .tooManyRequests, code: "upgrade_rate", reason: "too many WebSocket upgrades from \(address); slow down"))
        }
        let target: Target
        do throws(Refusal) {
            target = try Self.target(of: head.uri)
        } catch {
            metrics.badRequest(error.code)
            return .refuse(error)
        }
        if let reason = originPolicy.refusal(origin: head.headers.first(name: "origin"), host: client.host ?? head.headers.first(name: "host"),
                                             scheme: client.scheme) {
            metrics.upgradeRefused("origin")
            return .refuse(Refusal(status: .forbidden, code: "origin", reason: reason))
        }
        var grant: AccessGrant?
        if let authority {
            let token = TokenLocation.token(authorization: head.headers.first(name: "authorization"),
                                            webSocketProtocols: head.headers.first(name: "sec-websocket-protocol"), uri: head.uri)
            do throws(AuthFailure) {
                guard let token else { throw AuthFailure(kind: .missing, reason: "a token is required") }
                let verified = try await authority.verify(token)
                try Self.authorize(verified, for: target)
                grant = verified
            } catch {
                metrics.upgradeRefused(error.kind.rawValue)
                return .refuse(Refusal(error))
            }
        }
        // One sender per pulled stream, its camera: another would replace it, and be replaced back.
        if case .streamer(let id) = target, let source = relay.pulledSource(of: id) {
            metrics.upgradeRefused("pulled_stream")
            return .refuse(Refusal(status: .conflict, code: "pulled_stream",
                                   reason: "stream \(id) is pulled by the relay from \(source) (\"sources\" in the pipelines file)"))
        }
        let counts = relay.counts(forStream: { if case .streamer(let id) = target { id } else { nil } }(), token: grant?.tokenID)
        switch target {
        case .streamer:
            if !counts.streamIsLive, limits.maxStreams.isReached(by: counts.streams) {
                metrics.limitHit("streams")
                return .refuse(Refusal(status: .serviceUnavailable, code: "max_streams",
                                       reason: "the relay has its maximum of \(limits.maxStreams) live streams"))
            }
        case .viewer:
            if limits.maxViewers.isReached(by: counts.viewers) {
                metrics.limitHit("viewers")
                return .refuse(Refusal(status: .serviceUnavailable, code: "max_viewers",
                                       reason: "the relay has its maximum of \(limits.maxViewers) viewers"))
            }
            if grant != nil, limits.maxViewersPerToken.isReached(by: counts.tokenViewers) {
                metrics.limitHit("viewers_per_token")
                return .refuse(Refusal(status: .tooManyRequests, code: "viewers_per_token",
                                       reason: "this token already has \(limits.maxViewersPerToken) viewers connected"))
            }
        }
        return .admit(grant)
    }

    /// Whether a valid token covers what the request asks for.
    static func authorize(_ grant: AccessGrant, for target: Target) throws(AuthFailure) {
        switch target {
        case .streamer(let id):
            guard grant.roles.contains(.streamer) else { throw AuthFailure(kind: .wrongRole, reason: "a viewer token cannot publish a stream") }
            guard grant.scope.allows(id) else { throw AuthFailure(kind: .outOfScope, reason: "the token does not cover stream \(id)") }
        case .viewer(let requested):
            guard grant.roles.contains(.viewer) else { throw AuthFailure(kind: .wrongRole, reason: "a streamer token cannot watch") }
            if let outside = requested?.first(where: { !grant.scope.allows($0) }) {
                throw AuthFailure(kind: .outOfScope, reason: "the token does not cover stream \(outside)")
            }
        }
    }

    /// The socket a request target asks for, parsed with the same
    /// `RequestPath` the HTTP router's `CanonicalPathMiddleware` uses.
    package static func target(of uri: String) throws(Refusal) -> Target {
        let path: RequestPath
        do throws(RequestPath.Problem) {
            path = try RequestPath(parsing: uri)
        } catch {
            throw Refusal(error)
        }
        if path.matches("ws", "viewer") {
            do throws(ViewerOptions.Invalid) {
                let options = try ViewerOptions(query: path.query ?? "")
                return .viewer(requested: options.streams.map { $0.sorted() })
            } catch {
                throw Refusal(status: .badRequest, code: "bad_query", reason: error.description)
            }
        }
        if path.segments.count == 3, path.segments[0] == "ws", path.segments[1] == "stream" {
            let id = path.segments[2]
            guard StreamID.isValid(id) else { throw Refusal(status: .badRequest, code: "bad_stream_id", reason: StreamID.rule) }
            do throws(ViewerOptions.Invalid) {
                _ = try StreamerOptions(query: path.query ?? "")
            } catch {
                throw Refusal(status: .badRequest, code: "bad_query", reason: error.description)
            }
            return .streamer(String(id))
        }
        throw Refusal(status: .notFound, code: "not_found",
                      reason: "no WebSocket endpoint at \(path); streamers connect to /ws/stream/{stream_id}, viewers to /ws/viewer")
    }
}
