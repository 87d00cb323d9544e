import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A local identity provider's key endpoint: serves whatever JWKS the test
/// sets at `GET /certs` on a loopback port, and counts the fetches, so a
/// test can rotate the provider's keys and see how often the relay asks.
final class JWKSServer: Sendable {
    private let state = NIOLockedValueBox<(jwks: String, fetches: Int)>(("{\"keys\":[]}", 0))
    private let channel: any Channel

    var url: String { "http://127.0.0.1:\(channel.localAddress!.port!)/certs" }
    var fetches: Int { state.withLockedValue { $0.fetches } }
    func serve(_ jwks: String) { state.withLockedValue { $0.jwks = jwks } }

    init() async throws {
        let state = self.state
        channel = try await LoopbackHTTPServer.bind { Handler(state: state) }
    }

    func stop() async { try? await channel.close() }

    private final class Handler: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let state: NIOLockedValueBox<(jwks: String, fetches: Int)>
        init(state: NIOLockedValueBox<(jwks: String, fetches: Int)>) { self.state = state }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            let body = state.withLockedValue { s in s.fetches += 1; return s.jwks }
            let buffer = context.channel.allocator.buffer(string: body)
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "application/json")
            headers.add(name: "content-length", value: "\(buffer.readableBytes)")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
