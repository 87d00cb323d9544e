import Logging
import NIOCore
import NIOHTTP1

/// Refuses a WebSocket upgrade from a disallowed browser origin with HTTP
/// 403 before the upgrade handler sees it (hummingbird-websocket can only
/// refuse with 400). It sits between the HTTP decoder and the upgrade
/// handler and removes itself after the connection's first request: an
/// upgrade is only ever a connection's first request there.
final class OriginGuardHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let policy: OriginPolicy
    let logger: Logger
    private var refusing = false

    init(policy: OriginPolicy, logger: Logger) {
        self.policy = policy
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch part {
        case .head(let head):
            let isUpgrade = head.headers[canonicalForm: "upgrade"].contains { $0.lowercased() == "websocket" }
            if isUpgrade, let reason = policy.refusal(origin: head.headers.first(name: "origin"), host: head.headers.first(name: "host")) {
                refusing = true
                logger.warning("WebSocket upgrade refused", metadata: [
                    "reason": "\(reason)", "path": "\(head.uri.split(separator: "?").first ?? "")",
                    "remote": "\(context.channel.remoteAddress?.description ?? "unknown")",
                ])
                var headers = HTTPHeaders()
                headers.add(name: "content-type", value: "text/plain; charset=utf-8")
                headers.add(name: "connection", value: "close")
                let body = context.channel.allocator.buffer(string: reason + "\n")
                headers.add(name: "content-length", value: "\(body.readableBytes)")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .forbidden, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
                return
            }
            context.fireChannelRead(data)
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        case .body, .end:
            if !refusing { context.fireChannelRead(data) }
        }
    }
}
