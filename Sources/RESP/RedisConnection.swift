import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// Redis refused a command (`-ERR ...`, `-WRONGPASS ...`).
public struct RedisServerError: Error, Equatable, CustomStringConvertible {
    public let command: String
    public let message: String
    public var description: String { "redis refused \(command): \(message)" }

    public init(command: String, message: String) {
        self.command = command
        self.message = message
    }
}

/// The connection closed, failed or timed out before Redis answered.
public struct RedisConnectionError: Error, CustomStringConvertible {
    public let reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// One TCP (or TLS) connection to Redis on SwiftNIO.
///
/// It is used in one of two ways, never both: as a command connection, where
/// every command gets exactly one reply in order (pipelining is free, so a
/// frame's PUBLISH never waits for the previous one's reply), or as a
/// subscriber connection, where after SUBSCRIBE Redis only pushes messages.
/// framepipe keeps one of each per node.
public final class RedisConnection: Sendable {
    public let url: RedisURL
    let channel: any Channel

    private init(url: RedisURL, channel: any Channel) {
        self.url = url
        self.channel = channel
    }

    /// Connects, logs in (AUTH), selects the database and names the client
    /// (so `CLIENT LIST` on the Redis side says which node and role it is).
    /// Pushes (subscribed messages and their confirmations) go to `onPush`,
    /// on the connection's event loop, in the order Redis sent them.
    public static func connect(
        to url: RedisURL,
        clientName: String,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        connectTimeout: Duration = .seconds(3),
        writeBufferWaterMark: ChannelOptions.Types.WriteBufferWaterMark? = nil,
        tls: TLSConfiguration? = nil,
        parser: RESPParser = RESPParser(),
        onPush: @escaping @Sendable (RESPValue) -> Void = { _ in }
    ) async throws -> RedisConnection {
        if url.usesSentinel {
            let master = try await RedisSentinel.master(of: url, group: group, connectTimeout: connectTimeout, tls: tls)
            let connection = try await connect(to: url.at(master), clientName: clientName, group: group, connectTimeout: connectTimeout,
                                               writeBufferWaterMark: writeBufferWaterMark, tls: tls, parser: parser, onPush: onPush)
            // Just after a failover a sentinel may still name the old master, now a replica: not used.
            let role = try? await connection.run(RESPCommand("ROLE"), timeout: connectTimeout)
            guard role?.array?.first?.string == "master" else {
                connection.close()
                throw RedisConnectionError(reason: "\(master), which sentinel names master \"\(url.masterName ?? "")\", is not a master (a failover in progress?)")
            }
            return connection
        }
        // rediss:// verifies the server against the system's roots unless told other ones.
        let sslContext = url.useTLS ? try NIOSSLContext(configuration: tls ?? .makeClientConfiguration()) : nil
        let host = url.host
        var bootstrap = ClientBootstrap(group: group)
            .connectTimeout(TimeAmount(connectTimeout))
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        // SNI takes names only, never an address.
                        let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: sslContext, serverHostname: isAddress ? nil : host))
                    }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPDecoder(parser: parser)))
                    try channel.pipeline.syncOperations.addHandler(RedisClientHandler(onPush: onPush))
                }
            }
        if let writeBufferWaterMark {  // otherwise NIO's default
            bootstrap = bootstrap.channelOption(.writeBufferWaterMark, value: writeBufferWaterMark)
        }
        let channel = try await bootstrap.connect(host: url.host, port: url.port).get()
        let connection = RedisConnection(url: url, channel: channel)
        do {
            if let password = url.password {
                if let username = url.username {
                    _ = try await connection.run(RESPCommand("AUTH", .string(username), .string(password)))
                } else {
                    _ = try await connection.run(RESPCommand("AUTH", .string(password)))
                }
            }
            if url.database != 0 {
                _ = try await connection.run(RESPCommand("SELECT", .string(String(url.database))))
            }
            _ = try await connection.run(RESPCommand("CLIENT", "SETNAME", .string(clientName)))
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    /// Sends a command; the future holds its reply, `-ERR` included as `.error`.
    public func send(_ command: RESPCommand) -> EventLoopFuture<RESPValue> {
        request(command).futureResult
    }

    /// Writes `command`; the promise is answered by its reply or by the
    /// failure to send it.
    private func request(_ command: RESPCommand) -> EventLoopPromise<RESPValue> {
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        write(RedisRequest(command: command, reply: .awaited(promise)), failing: promise)
        return promise
    }

    /// Sends a command whose reply nobody needs (a frame's PUBLISH); the
    /// reply is still read and discarded in turn, so order is kept.
    public func sendIgnoringReply(_ command: RESPCommand) {
        write(RedisRequest(command: command, reply: .ignored), failing: nil)
    }

    /// Sends SUBSCRIBE/UNSUBSCRIBE: their confirmations arrive as pushes.
    public func sendSubscription(_ command: RESPCommand) {
        write(RedisRequest(command: command, reply: .push), failing: nil)
    }

    /// A write to a channel that already closed (a TLS handshake refused
    /// between connect and the first command, Redis gone mid-write) never
    /// reaches the handler that would answer `reply`, so its failure has to
    /// be passed on here or the caller waits forever.
    private func write(_ request: RedisRequest, failing reply: EventLoopPromise<RESPValue>?) {
        let written = channel.eventLoop.makePromise(of: Void.self)
        let channel = self.channel
        let name = request.command.name
        written.futureResult.whenFailure { error in
            reply?.fail(RedisConnectionError(reason: "could not send \(name) to redis: \(error)"))
            channel.close(promise: nil)
        }
        channel.writeAndFlush(request, promise: written)
    }

    /// Sends a command and waits for its reply; a refusal throws
    /// `RedisServerError`. Past `timeout` the connection is closed, since
    /// a server that stopped answering leaves it in an unknown state.
    public func run(_ command: RESPCommand, timeout: Duration = .seconds(5)) async throws -> RESPValue {
        let reply = try await reply(to: command, timeout: timeout)
        if case .error(let message) = reply { throw RedisServerError(command: command.name, message: message) }
        return reply
    }

    /// As `run`, but a refusal is the reply (`.error`): a cluster's `MOVED`
    /// and `ASK` are answers to act on, not failures.
    public func reply(to command: RESPCommand, timeout: Duration = .seconds(5)) async throws -> RESPValue {
        let promise = request(command)
        let channel = self.channel
        let timer = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            // Failed here as well as through the pipeline: on a channel
            // already torn down no handler is left to fail it.
            let error = RedisConnectionError(reason: "redis did not answer \(command.name) within \(timeout)")
            channel.pipeline.fireErrorCaught(error)
            promise.fail(error)
        }
        defer { timer.cancel() }
        return try await promise.futureResult.get()
    }

    /// False while the socket's send buffer is full: Redis reads slower
    /// than we write. Frames are not queued behind it.
    public var isWritable: Bool { channel.isWritable }

    public var isActive: Bool { channel.isActive }

    /// Completes when the connection is gone, for whatever reason.
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    public func close() {
        channel.close(promise: nil)
    }
}

/// What the handler is told to write, and what to do with the reply.
struct RedisRequest {
    enum Reply {
        case awaited(EventLoopPromise<RESPValue>)
        case ignored
        /// No reply of its own: the server answers with pushes.
        case push
    }
    var command: RESPCommand
    var reply: Reply
}

/// Turns the socket's bytes into RESP values.
struct RESPDecoder: ByteToMessageDecoder {
    typealias InboundOut = RESPValue
    let parser: RESPParser

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let value = try parser.parse(&buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(value))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}

/// Matches replies to requests in order, and routes pushes. Event-loop bound.
final class RedisClientHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private var pending = CircularBuffer<EventLoopPromise<RESPValue>?>()
    private var subscribed = false
    private let onPush: @Sendable (RESPValue) -> Void

    init(onPush: @escaping @Sendable (RESPValue) -> Void) {
        self.onPush = onPush
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        switch request.reply {
        case .awaited(let reply): pending.append(reply)
        case .ignored: pending.append(nil)
        case .push: subscribed = true
        }
        var buffer = context.channel.allocator.buffer(capacity: request.command.encodedSize)
        request.command.encode(into: &buffer)
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = unwrapInboundIn(data)
        if subscribed, Self.isPush(value) {
            onPush(value)
        } else if let next = pending.popFirst() {
            next?.succeed(value)
        } else {
            onPush(value)  // unsolicited; the subscriber's owner decides
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failPending(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failPending(RedisConnectionError(reason: "connection to redis closed"))
        context.fireChannelInactive()
    }

    private func failPending(_ error: any Error) {
        while let next = pending.popFirst() { next?.fail(error) }
    }

    private static func isPush(_ value: RESPValue) -> Bool {
        guard let kind = value.array?.first?.string else { return false }
        switch kind {
        case "message", "pmessage", "subscribe", "unsubscribe", "psubscribe", "punsubscribe",
             "smessage", "ssubscribe", "sunsubscribe": return true
        default: return false
        }
    }
}
