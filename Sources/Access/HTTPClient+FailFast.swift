import AsyncHTTPClient
import NIOPosix

extension HTTPClient {
    /// A client on which a refused connection fails the request at once.
    /// Every caller here retries on its own schedule and says so (a JWKS
    /// fetch, a webhook delivery, a pulled camera); the client's own quiet
    /// retries would hide a mistyped or dead address until a timeout.
    /// Whoever makes one shuts it down, unless it lives for the process.
    package static func failingFast(_ adjust: (inout Configuration) -> Void = { _ in }) -> HTTPClient {
        var configuration = Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        adjust(&configuration)
        return HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
    }
}
