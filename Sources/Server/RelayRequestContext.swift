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
/// leaking that way (about 11 KB each, and with the channel, the
/// connection's whole pipeline). So the box lives in a `WebSocketSlot` that
/// the routes empty once the upgrade has started; should the upgrade fail
/// after the route accepted it, the connection's close empties the slot and
/// lets go of the channel (`upgradeAccepted`).
struct RelayRequestContext: RequestContext, WebSocketRequestContext {
    var coreContext: CoreRequestContextStorage
    private let webSocketSlot = WebSocketSlot()
    var webSocket: WebSocketHandlerReference<RelayRequestContext> { webSocketSlot.reference }
    private let channelReference: ChannelReference
    /// nil once an accepted upgrade's connection has closed.
    var channel: (any Channel)? { channelReference.channel }
    /// Set by `TokenRequiredMiddleware` when auth is on and the request's token is valid.
    var grant: AccessGrant?

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channelReference = ChannelReference(source.channel)
    }

    /// Breaks hummingbird-websocket's context cycle; call once the upgrade has started.
    func releaseWebSocketHandler() { webSocketSlot.release() }

    /// The route is about to accept an upgrade, which puts this context in
    /// hummingbird-websocket's cycle until `releaseWebSocketHandler()`. An
    /// upgrade that fails after this never gets there: the connection's
    /// close then breaks the cycle and lets go of its channel. One hook per
    /// accepted upgrade, so at most one per connection.
    func upgradeAccepted() {
        guard let channel else { return }
        let slot = webSocketSlot, reference = channelReference
        channel.closeFuture.whenComplete { _ in
            slot.release()
            reference.release()
        }
    }

    /// The TCP peer's IP address.
    var peerAddress: String { channel?.remoteAddress?.ipAddress ?? "unknown" }

    /// Who sent `request`: the peer, or behind a trusted proxy the client it names.
    func client(of request: Request, trusted: TrustedProxies) -> String {
        ForwardedClient.resolve(peer: peerAddress, header: { name in HTTPField.Name(name).flatMap { request.headers[$0] } },
                                trusted: trusted).address
    }
}

/// A request's channel, shareable across tasks, until it is let go of.
///
/// Held strongly, not weakly: a weak reference gives the channel a side
/// table for the rest of its life, and every retain and release of it then
/// takes Swift's slow path, several for each frame written to a viewer
/// (about 3% of the relay's CPU in a fan-out). A plain request's context
/// ends with the request; an upgrade's lets go at the latest when the
/// connection closes (`RelayRequestContext.upgradeAccepted`).
final class ChannelReference: Sendable {
    private let held: NIOLockedValueBox<(any Channel)?>

    init(_ channel: any Channel) {
        held = NIOLockedValueBox(channel)
    }

    /// nil once let go of.
    var channel: (any Channel)? { held.withLockedValue { $0 } }

    func release() { held.withLockedValue { $0 = nil } }
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
