import NIOCore
import NIOHTTP1
import NIOPosix

/// An HTTP/1.1 server channel on a free loopback port, each connection
/// served by a handler from `makeHandler`: the base of the test's local
/// identity provider and webhook receiver.
enum LoopbackHTTPServer {
    static func bind(_ makeHandler: @escaping @Sendable () -> any ChannelHandler & Sendable) async throws -> any Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap { channel.pipeline.addHandler(makeHandler()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }
}
