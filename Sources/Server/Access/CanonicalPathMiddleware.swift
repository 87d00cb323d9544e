import Access
import RelayCore
import Hummingbird
import Logging
import WireProtocol

/// First on both routers: a request whose target is not in `RequestPath`'s
/// one canonical spelling is refused with 400 before any route or
/// protection sees it, so the router can never resolve a spelling that a
/// check elsewhere did not foresee. The upgrade gate parses targets with
/// the same `RequestPath`.
struct CanonicalPathMiddleware: RouterMiddleware {
    typealias Context = RelayRequestContext

    let metrics: RelayMetrics
    var audit: AuditLog? = nil
    var trustedProxies = TrustedProxies()
    var logger = Logger(label: "framepipe")

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do throws(RequestPath.Problem) {
            _ = try RequestPath(parsing: request.uri.string)
        } catch {
            metrics.badRequest("bad_path")
            let client = context.client(of: request, trusted: trustedProxies)
            // The path is whatever the client sent: logged escaped and cut short, without its query.
            logger.info("request refused", metadata: [
                "status": "400", "reason": "\(error.description)",
                "path": "\(request.uri.string.split(separator: "?").first?.prefix(128).debugDescription ?? "")", "remote": "\(client)",
            ])
            audit?.record(.refused(what: "http", path: request.uri.string, status: 400, code: "bad_path", reason: error.description,
                                   identity: .init(grant: nil, client: client)))
            return Refusal(error).response()
        }
        return try await next(request, context)
    }
}
