import Access
import RelayCore
import Hummingbird

/// The only door through which the relay adds a route that is not public:
/// each group it hands out carries a `TokenRequiredMiddleware`, so a route
/// added through it cannot forget its protection, and a route not added
/// through it must be in `PublicRoutes` (the one explicit list of what
/// anyone may fetch).
struct ProtectedRoutes {
    let router: Router<RelayRequestContext>
    let authority: TokenAuthority?
    let metrics: RelayMetrics
    let refusals: RefusalRecorder
    var trustedProxies = TrustedProxies()

    /// A group whose every route needs a token meeting `requirement`.
    func requiring(_ requirement: TokenRequirement) -> RouterGroup<RelayRequestContext> {
        router.group().add(middleware: TokenRequiredMiddleware(requirement: requirement, authority: authority, metrics: metrics,
                                                               refusals: refusals, trustedProxies: trustedProxies))
    }
}
