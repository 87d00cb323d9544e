import Access
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import NIOConcurrencyHelpers
import HTTPTypes

/// Hummingbird's request context plus the connection's channel, which the
/// relay needs to cut off a client that stops reading (a close frame would
/// queue behind the data it is not reading).
///
/// hummingbird-websocket keeps each upgraded request's context in a
/// reference cycle: its handler box holds a copy of the context, which holds
/// the box. AddressSanitizer's leak check found every WebSocket connection
/// leaking that way (about 11 KB each, and with a strong channel, the
/// connection's whole pipeline). So the box lives in a `WebSocketSlot` that
/// the routes empty once the upgrade has started, and the channel is held
/// weakly in case an upgrade fails after the route accepted it.
struct RelayRequestContext: RequestContext, WebSocketRequestContext {
    var coreContext: CoreRequestContextStorage
    private let webSocketSlot = WebSocketSlot()
    var webSocket: WebSocketHandlerReference<RelayRequestContext> { webSocketSlot.reference }
    private let channelReference: ChannelReference
    /// nil once the connection has closed and its channel is gone.
    var channel: (any Channel)? { channelReference.channel }
    /// Set by `TokenRequiredMiddleware` when auth is on and the request's token is valid.
    var grant: AccessGrant?

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channelReference = ChannelReference(source.channel)
    }

    /// Breaks hummingbird-websocket's context cycle; call once the upgrade has started.
    func releaseWebSocketHandler() { webSocketSlot.release() }

    /// The TCP peer's IP address.
    var peerAddress: String { channel?.remoteAddress?.ipAddress ?? "unknown" }

    /// Who sent `request`: the peer, or behind a trusted proxy the client it names.
    func client(of request: Request, trusted: TrustedProxies) -> String {
        ForwardedClient.resolve(peer: peerAddress, header: { name in HTTPField.Name(name).flatMap { request.headers[$0] } },
                                trusted: trusted).address
    }
}

/// A weak reference to a channel, shareable across tasks.
final class ChannelReference: Sendable {
    weak let channel: (any Channel)?

    init(_ channel: any Channel) {
        self.channel = channel
    }
}

/// Owns a request's `WebSocketHandlerReference` until the upgrade has
/// started, then lets go of it (see `RelayRequestContext`).
final class WebSocketSlot: Sendable {
    private let held = NIOLockedValueBox<WebSocketHandlerReference<RelayRequestContext>?>(WebSocketHandlerReference())

    var reference: WebSocketHandlerReference<RelayRequestContext> {
        held.withLockedValue { $0 } ?? WebSocketHandlerReference()
    }

    func release() { held.withLockedValue { $0 = nil } }
}
