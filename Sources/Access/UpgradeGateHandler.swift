import Logging
import NIOCore
import NIOHTTP1

/// Sits between the HTTP decoder and hummingbird-websocket's upgrade
/// handler and holds a connection's first request until `UpgradeAdmission`
/// has judged it, so a refusal gets its real status (401, 403, 429, 503)
/// instead of the upgrader's bare 400. It also enforces the handshake
/// timeout: a connection must finish its request headers in time (slowloris).
///
/// It removes itself after the first request: an upgrade is only ever a
/// connection's first request there. While a request is being judged (a
/// token check may wait on the identity provider's keys) it reads nothing
/// more from the socket: what the client sends meanwhile waits in the
/// kernel, where TCP holds it back, not in this handler's memory.
package final class UpgradeGateHandler: ChannelDuplexHandler, RemovableChannelHandler {
    package typealias InboundIn = HTTPServerRequestPart
    package typealias InboundOut = HTTPServerRequestPart
    package typealias OutboundIn = HTTPServerResponsePart
    package typealias OutboundOut = HTTPServerResponsePart

    private enum State { case waitingForHead, judging, refusing, admitted, removed }

    private let admission: UpgradeAdmission
    private let tickets: AdmissionTickets
    private let handshakeTimeout: Duration
    private var state = State.waitingForHead
    private var held: [NIOAny] = []
    /// A read asked for while judging, to ask for once the verdict is in.
    private var readWanted = false
    private var handshakeTimer: Task<Void, Never>?

    package init(admission: UpgradeAdmission, tickets: AdmissionTickets, handshakeTimeout: Duration) {
        self.admission = admission
        self.tickets = tickets
        self.handshakeTimeout = handshakeTimeout
    }

    /// The timer runs on the relay's clock (a test moves it), and acts on the
    /// connection's own event loop, where the handler's state lives.
    package func handlerAdded(context: ChannelHandlerContext) {
        guard handshakeTimeout > .zero else { return }
        let clock = admission.clock
        let deadline = clock.now.addingTimeInterval(handshakeTimeout.seconds)
        let loop = context.eventLoop
        let connection = NIOLoopBound((handler: self, context: context), eventLoop: loop)
        handshakeTimer = Task {
            do { try await clock.sleep(until: deadline) } catch { return }
            loop.execute { connection.value.handler.handshakeTimedOut(context: connection.value.context) }
        }
    }

    private func handshakeTimedOut(context: ChannelHandlerContext) {
        guard state == .waitingForHead, context.channel.isActive else { return }
        state = .refusing
        admission.metrics.limitHit("handshake_timeout")
        admission.logger.info("connection closed: no request within the handshake timeout", metadata: [
            "remote": "\(context.channel.remoteAddress?.description ?? "unknown")",
        ])
        context.close(promise: nil)
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        // A client gone while its upgrade was being judged: the verdict, when
        // it comes, has no connection left to act on.
        state = .removed
        held = []
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch state {
        case .waitingForHead:
            guard case .head(let head) = unwrapInboundIn(data) else {
                context.fireChannelRead(data)
                return
            }
            handshakeTimer?.cancel()
            let isUpgrade = head.headers[canonicalForm: "upgrade"].contains { $0.lowercased() == "websocket" }
            guard isUpgrade else {
                state = .admitted
                context.fireChannelRead(data)
                context.pipeline.syncOperations.removeHandler(self, promise: nil)
                return
            }
            state = .judging
            held.append(data)
            let peer = context.channel.remoteAddress?.ipAddress ?? "unknown"
            let client = ForwardedClient.resolve(peer: peer, header: { head.headers.first(name: $0) }, trusted: admission.trustedProxies)
            // Behind a trusted proxy every connection has the proxy's address:
            // a WebSocket's connection is counted against its real client
            // instead, now that the request says who that is.
            if admission.trustedProxies.trusts(peer) {
                guard admission.ledger.openConnection(from: client.address) else {
                    admission.metrics.limitHit("connections_per_address")
                    finish(.refuse(Refusal(status: .tooManyRequests, code: "connections_per_address",
                                           reason: "too many connections from \(client.address)")), head: head, client: client.address, context: context)
                    return
                }
                let ledger = admission.ledger
                context.channel.closeFuture.whenComplete { _ in ledger.closeConnection(from: client.address) }
            }
            let promise = context.eventLoop.makePromise(of: UpgradeAdmission.Decision.self)
            promise.completeWithTask { [admission] in await admission.decide(head: head, client: client) }
            promise.futureResult.assumeIsolated().whenSuccess { [self] decision in
                finish(decision, head: head, client: client.address, context: context)
            }
        case .judging:
            held.append(data)
        case .refusing, .removed:
            break
        case .admitted:
            context.fireChannelRead(data)
        }
    }

    /// Reads wait while a request is judged (see the type's comment).
    package func read(context: ChannelHandlerContext) {
        guard state == .judging else {
            context.read()
            return
        }
        readWanted = true
    }

    /// A first request the HTTP parser cannot read (a NUL in the target, a
    /// broken header line) gets a 400 with the reason rather than a socket
    /// that silently closes. NIO's own `HTTPServerProtocolErrorHandler`
    /// cannot do this here: it would stay in the pipeline after an upgrade
    /// and meet WebSocket frames.
    package func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard state == .waitingForHead, error is HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        handshakeTimer?.cancel()
        state = .refusing
        admission.metrics.badRequest("unparsable")
        let refusal = Refusal(status: .badRequest, code: "unparsable", reason: "the request is not valid HTTP/1.1 (\(error))")
        admission.refusals.record(refusal, upgrade: false, target: "", client: context.channel.remoteAddress?.ipAddress ?? "unknown")
        respond(refusal, version: .http1_1, context: context)
    }

    private func finish(_ decision: UpgradeAdmission.Decision, head: HTTPRequestHead, client: String, context: ChannelHandlerContext) {
        guard state == .judging else { return }
        switch decision {
        case .admit(let grant):
            state = .admitted
            tickets.put(AdmissionTicket(grant: grant, client: client), for: context.channel)
            let parts = held
            held = []
            for part in parts { context.fireChannelRead(part) }
            context.fireChannelReadComplete()
            if readWanted {
                readWanted = false
                context.read()
            }
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        case .refuse(let refusal):
            state = .refusing
            held = []
            admission.refusals.record(refusal, upgrade: true, target: head.uri, client: client)
            respond(refusal, version: head.version, context: context)
        }
    }

    /// Writes the refusal's JSON body and closes the connection.
    private func respond(_ refusal: Refusal, version: HTTPVersion, context: ChannelHandlerContext) {
        let status = HTTPResponseStatus(statusCode: refusal.status.code)
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "cache-control", value: "no-store")
        headers.add(name: "connection", value: "close")
        if status == .unauthorized { headers.add(name: "www-authenticate", value: "Bearer") }
        let body = context.channel.allocator.buffer(string: refusal.jsonText)
        headers.add(name: "content-length", value: "\(body.readableBytes)")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}
