import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOEmbedded

/// Sets up one HTTP connection's pipeline, on the calling thread and on a
/// channel that is not a socket, before the relay listens.
///
/// Why: the Swift runtime can crash when two threads instantiate the same
/// generic type's metadata by name for the first time at once (a race of the
/// kind fixed in swiftlang/swift#37656 and #61276, still seen with Swift 6.3
/// here). A relay's first two connections arrive on two event loops together,
/// and both build the HTTP/WebSocket upgrade pipeline, whose handler types are
/// looked up by name: in a clean-clone CI run the relay died with SIGSEGV in
/// `configureUpgradableHTTPServerPipeline` on both loops. Metadata, once
/// complete, is cached for the whole process, so building that pipeline once
/// here, alone, leaves nothing for the first connections to race on.
///
/// A plain request is fed through it, so the not-upgrading path's types are
/// made too. The relay's own admission handlers are not added (they would
/// count a connection that does not exist) and no request reaches a route:
/// neither is generic, and nothing is recorded.
enum ConnectionTypesWarmUp {
    /// True when the request went all the way through the pipeline's
    /// not-upgrading path (as a page load does), so its types were made.
    @discardableResult
    static func run(_ base: HTTP1WebSocketUpgradeChannel, logger: Logger) -> Bool {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
        do {
            _ = base.setup(channel: channel, logger: Logger(label: logger.label, factory: { _ in SwiftLogNoOpLogHandler() }))
            try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: warm-up\r\n\r\n"))
        } catch {
            // Nothing depends on it: the first connections would then make the types themselves, as before.
            logger.warning("connection pipeline warm-up failed", metadata: ["error": "\(error)"])
            return false
        }
        // The not-upgrading path adds hummingbird's HTTP/1 codec; its name is how the pipeline shows it.
        let tookWholePath = channel.pipeline.debugDescription.contains("HTTP1ToHTTPServerCodec")
        if !tookWholePath { logger.warning("connection pipeline warm-up stopped short of the HTTP/1 codec") }
        return tookWholePath
    }
}
