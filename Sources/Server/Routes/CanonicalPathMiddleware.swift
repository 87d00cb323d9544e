import Access
import RelayCore
import Hummingbird
import WireProtocol

/// First on both routers: a request whose target is not in `RequestPath`'s
/// one canonical spelling is refused with 400 before any route or
/// protection sees it, so the router can never resolve a spelling that a
/// check elsewhere did not foresee. The upgrade gate parses targets with
/// the same `RequestPath`.
struct CanonicalPathMiddleware: RouterMiddleware {
    typealias Context = RelayRequestContext

    let metrics: RelayMetrics
    let refusals: RefusalRecorder
    var trustedProxies = TrustedProxies()

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do throws(RequestPath.Problem) {
            _ = try RequestPath(parsing: request.uri.string)
        } catch {
            metrics.badRequest("bad_path")
            let refusal = Refusal(error)
            refusals.record(refusal, upgrade: false, target: request.uri.string, client: context.client(of: request, trusted: trustedProxies))
            return refusal.response()
        }
        return try await next(request, context)
    }
}
