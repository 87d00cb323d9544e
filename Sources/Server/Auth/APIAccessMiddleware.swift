import Hummingbird
import NIOCore
import Pipeline

/// With auth on, the JSON API and `/metrics` need a viewer token like the
/// viewer socket does: stream ids, pictures and viewer lists are as private
/// as the frames. `/metrics` and `/api/viewers` (which span every stream)
/// need a token covering all streams; `/api/session` takes any valid token.
/// Pages, assets and `/healthz` stay open.
struct APIAccessMiddleware: RouterMiddleware {
    typealias Context = RelayRequestContext

    let authority: TokenAuthority?
    let metrics: RelayMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard let authority, path.hasPrefix("/api/") || path == "/metrics" else {
            return try await next(request, context)
        }
        let token = TokenLocation.token(authorization: request.headers[.authorization], webSocketProtocols: nil,
                                        uri: request.uri.description)
        let grant: AccessGrant
        do throws(AuthFailure) {
            guard let token else { throw AuthFailure(kind: .missing, reason: "a token is required") }
            grant = try await authority.verify(token)
            // Any valid token may ask who it is; the pages use that to check a token before they connect.
            guard grant.role == .viewer || path == "/api/session" else {
                throw AuthFailure(kind: .wrongRole, reason: "a streamer token cannot read the API")
            }
            if path == "/metrics" || path == "/api/viewers", !grant.scope.coversAll {
                throw AuthFailure(kind: .outOfScope, reason: "this needs a token covering all streams")
            }
        } catch {
            metrics.upgradeRefused(error.kind.rawValue)
            var headers: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store"]
            if error.status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
            let body = JSONValue.object([("error", .string(error.reason)), ("auth", .string(error.kind.rawValue))]).jsonText
            return Response(status: error.status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        var context = context
        context.grant = grant
        return try await next(request, context)
    }
}
