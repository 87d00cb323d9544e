import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// Hummingbird's request context plus the connection's channel, which the
/// relay needs to cut off a client that stops reading (a close frame would
/// queue behind the data it is not reading).
///
/// The channel is held weakly: hummingbird-websocket keeps each upgraded
/// request's context in a reference cycle (its handler box holds a copy of
/// the context, which holds the box). With a strong channel here, every
/// closed WebSocket's pipeline and read buffers would stay alive with it
/// (found by AddressSanitizer's leak check); weakly, a few hundred bytes do.
struct RelayRequestContext: RequestContext, WebSocketRequestContext {
    var coreContext: CoreRequestContextStorage
    let webSocket: WebSocketHandlerReference<RelayRequestContext>
    private let channelReference: ChannelReference
    /// nil once the connection has closed and its channel is gone.
    var channel: (any Channel)? { channelReference.channel }
    /// Set by `APIAccessMiddleware` when auth is on and the request's token is valid.
    var grant: AccessGrant?

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.webSocket = .init()
        self.channelReference = ChannelReference(source.channel)
    }

    var remoteAddress: String {
        channel?.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "unknown"
    }
}

/// A weak reference to a channel, shareable across tasks.
final class ChannelReference: Sendable {
    weak let channel: (any Channel)?

    init(_ channel: any Channel) {
        self.channel = channel
    }
}
