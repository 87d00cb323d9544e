import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// Hummingbird's request context plus the connection's channel, which the
/// relay needs to cut off a client that stops reading (a close frame would
/// queue behind the data it is not reading).
struct RelayRequestContext: RequestContext, WebSocketRequestContext {
    var coreContext: CoreRequestContextStorage
    let webSocket: WebSocketHandlerReference<RelayRequestContext>
    let channel: any Channel
    /// Set by `APIAccessMiddleware` when auth is on and the request's token is valid.
    var grant: AccessGrant?

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.webSocket = .init()
        self.channel = source.channel
    }

    var remoteAddress: String {
        channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "unknown"
    }
}
