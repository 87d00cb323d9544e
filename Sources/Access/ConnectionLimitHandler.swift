import Logging
import NIOCore

/// First in every connection's pipeline: counts the connection against its
/// address's share in the `AddressLedger` and closes it at once when the
/// address already has its maximum, before any byte is parsed. A trusted
/// proxy's connections are not counted here: the upgrade gate counts each
/// against the client the proxy names.
package final class ConnectionLimitHandler: ChannelInboundHandler {
    package typealias InboundIn = ByteBuffer

    private let ledger: AddressLedger
    private let trustedProxies: TrustedProxies
    private let metrics: any AccessMetrics
    private let logger: Logger
    private var address: String?

    package init(ledger: AddressLedger, trustedProxies: TrustedProxies, metrics: any AccessMetrics, logger: Logger) {
        self.ledger = ledger
        self.trustedProxies = trustedProxies
        self.metrics = metrics
        self.logger = logger
    }

    package func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { count(context) }
    }

    package func channelActive(context: ChannelHandlerContext) {
        count(context)
        context.fireChannelActive()
    }

    package func channelInactive(context: ChannelHandlerContext) {
        if let address { ledger.closeConnection(from: address) }
        address = nil
        context.fireChannelInactive()
    }

    private func count(_ context: ChannelHandlerContext) {
        guard address == nil, let ip = context.channel.remoteAddress?.ipAddress, !trustedProxies.trusts(ip) else { return }
        if ledger.openConnection(from: ip) {
            address = ip
        } else {
            metrics.limitHit("connections_per_address")
            logger.warning("connection refused: too many from one address", metadata: ["remote": "\(ip)"])
            context.close(promise: nil)
        }
    }
}
