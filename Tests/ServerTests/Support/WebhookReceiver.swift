import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A local webhook receiver on a loopback port: keeps every request it
/// gets (headers and body), and answers the first `failFirst` of them with
/// `failStatus`, so a test sees the relay retry, then succeed. A `silent`
/// one reads each request and never answers, as a hung receiver does.
final class WebhookReceiver: Sendable {
    struct Request: Sendable {
        let headers: [String: String]
        let body: String
        /// What the receiver answered; 0 when silent.
        let status: Int
    }

    private struct State {
        var requests: [Request] = []
        var failuresLeft: Int
        var failStatus: Int
    }

    private let state: NIOLockedValueBox<State>
    private let channel: any Channel

    var url: String { "http://127.0.0.1:\(channel.localAddress!.port!)/hooks/framepipe" }
    var requests: [Request] { state.withLockedValue { $0.requests } }
    /// The requests it answered 2xx, in order.
    var accepted: [Request] { requests.filter { $0.status / 100 == 2 } }

    init(failFirst: Int = 0, failStatus: Int = 503, silent: Bool = false) async throws {
        let state = NIOLockedValueBox(State(failuresLeft: failFirst, failStatus: failStatus))
        self.state = state
        channel = try await LoopbackHTTPServer.bind { Handler(state: state, silent: silent) }
    }

    func stop() async { try? await channel.close() }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let state: NIOLockedValueBox<State>
        let silent: Bool
        // Only touched on the channel's event loop.
        private var head: HTTPRequestHead?
        private var body = ByteBuffer()
        init(state: NIOLockedValueBox<State>, silent: Bool) {
            self.state = state
            self.silent = silent
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body.clear()
            case .body(var chunk):
                body.writeBuffer(&chunk)
            case .end:
                var headers: [String: String] = [:]
                for (name, value) in head?.headers ?? [:] { headers[name.lowercased()] = value }
                let text = String(buffer: body)
                let silent = silent
                let status = state.withLockedValue { s -> Int in
                    let status = silent ? 0 : s.failuresLeft > 0 ? s.failStatus : 204
                    if s.failuresLeft > 0 { s.failuresLeft -= 1 }
                    s.requests.append(Request(headers: headers, body: text, status: status))
                    return status
                }
                guard status != 0 else { return }
                var response = HTTPHeaders()
                response.add(name: "content-length", value: "0")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: status), headers: response))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
