@testable import FramepipeServer
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOEmbedded
import Testing

/// How long a request's context keeps its connection's channel
/// (`RelayRequestContext`): strongly, so the channel never gets a side
/// table, and never past the connection, even when hummingbird-websocket
/// holds the context in its cycle.
@Suite("Request context")
struct RequestContextTests {
    /// What a WebSocket route does with a request, through a real
    /// hummingbird-websocket router: a route that accepts the upgrade
    /// (`upgradeAccepted`, then `.upgrade`), as the relay's two do.
    private static func accept(on channel: any Channel) async throws -> HTTPResponse.Status {
        let router = Router(context: RelayRequestContext.self)
        router.ws("/ws") { _, context in
            context.upgradeAccepted()
            return .upgrade([:])
        } onUpgrade: { _, _, context in
            context.requestContext.releaseWebSocketHandler()
        }
        let context = RelayRequestContext(source: ApplicationRequestContextSource(channel: channel, logger: Logger(label: "test")))
        let request = Request(head: HTTPRequest(method: .get, scheme: "http", authority: "relay", path: "/ws"), body: .init(buffer: ByteBuffer()))
        return try await router.buildResponder().respond(to: request, context: context).status
    }

    /// The route accepted, but the upgrade never ran (it failed after the
    /// route): the router's box still holds the context, and the context the
    /// box. Once the connection closes, the channel is freed all the same.
    @Test func anUpgradeThatNeverRanLetsGoOfTheChannelWhenTheConnectionCloses() async throws {
        weak var watched: EmbeddedChannel?
        do {
            let channel = EmbeddedChannel()
            watched = channel
            #expect(try await Self.accept(on: channel) == .ok)
            #expect(watched != nil)
            _ = try channel.finish()  // closes it
        }
        #expect(watched == nil, "the closed connection's channel is still alive: the context's cycle holds it")
    }

    /// While the connection is open, the context's channel is there for the
    /// relay to cut off a client that stops reading.
    @Test func theChannelIsThereWhileTheConnectionIsOpen() throws {
        let channel = EmbeddedChannel()
        let context = RelayRequestContext(source: ApplicationRequestContextSource(channel: channel, logger: Logger(label: "test")))
        context.upgradeAccepted()
        #expect(context.channel === channel)
        _ = try channel.finish()
        #expect(context.channel == nil)
    }
}
