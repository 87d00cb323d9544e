import Access
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOHTTP1

/// hummingbird-websocket's HTTP/1 + WebSocket child channel with the
/// relay's admission handlers added: `ConnectionLimitHandler` first, and
/// `UpgradeGateHandler` in front of the upgrade handler.
struct GuardedUpgradeChannel: ServerChildChannel {
    typealias Value = HTTP1WebSocketUpgradeChannel.Value

    let base: HTTP1WebSocketUpgradeChannel
    let admission: UpgradeAdmission
    let tickets: AdmissionTickets

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        base.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(ConnectionLimitHandler(ledger: admission.ledger, trustedProxies: admission.trustedProxies,
                                                       metrics: admission.metrics, logger: admission.logger),
                                position: .first)
            let decoder = try sync.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try sync.addHandler(
                UpgradeGateHandler(admission: admission, tickets: tickets, handshakeTimeout: admission.limits.handshakeTimeout),
                position: .after(decoder))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
