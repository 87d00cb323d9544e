import Access
import RelayCore
import Hummingbird

/// What a protected route asks of a token.
enum TokenRequirement: Sendable {
    /// Any valid token, streamer or viewer (`/api/session`: a page checks its token with it).
    case anyRole
    /// A viewer token; what it may see is then filtered by its scope.
    case viewer
    /// A viewer token covering every stream (`/metrics`, `/api/viewers` span all streams).
    case viewerOfAllStreams
    /// An admin token: operations that change the relay (`POST /api/reload`).
    case admin
    /// A streamer token (`POST /api/streams/{id}/ingest`); the stream must be in its scope.
    case streamer
}

/// Attached to a route group, so every route in the group needs a valid
/// token meeting `requirement`; with auth off it lets everything through.
/// The grant it verified is put in the context for the handler to filter by.
///
/// Protection travels with the routes (`ProtectedRoutes` is the only way
/// the relay adds a non-public route); nothing here looks at the path.
struct TokenRequiredMiddleware: RouterMiddleware {
    typealias Context = RelayRequestContext

    let requirement: TokenRequirement
    let authority: TokenAuthority?
    let metrics: RelayMetrics
    let refusals: RefusalRecorder
    var trustedProxies = TrustedProxies()

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let authority else { return try await next(request, context) }
        let token = TokenLocation.token(authorization: request.headers[.authorization], webSocketProtocols: nil,
                                        uri: request.uri.string)
        let grant: AccessGrant
        do throws(AuthFailure) {
            guard let token else { throw AuthFailure(kind: .missing, reason: "a token is required") }
            grant = try await authority.verify(token)
            try Self.check(grant, against: requirement)
        } catch {
            metrics.upgradeRefused(error.kind.rawValue)
            let refusal = Refusal(error)
            refusals.record(refusal, upgrade: false, target: request.uri.string, client: context.client(of: request, trusted: trustedProxies))
            return refusal.response()
        }
        var context = context
        context.grant = grant
        return try await next(request, context)
    }

    static func check(_ grant: AccessGrant, against requirement: TokenRequirement) throws(AuthFailure) {
        switch requirement {
        case .anyRole:
            return
        case .admin:
            guard grant.roles.contains(.admin) else { throw AuthFailure(kind: .wrongRole, reason: "this needs an admin token (framepipe token --role admin)") }
        case .streamer:
            guard grant.roles.contains(.streamer) else { throw AuthFailure(kind: .wrongRole, reason: "a viewer token cannot publish") }
        case .viewer, .viewerOfAllStreams:
            guard grant.roles.contains(.viewer) else { throw AuthFailure(kind: .wrongRole, reason: "a streamer token cannot read the API") }
            if requirement == .viewerOfAllStreams, !grant.scope.coversAll {
                throw AuthFailure(kind: .outOfScope, reason: "this needs a token covering all streams")
            }
        }
    }
}
