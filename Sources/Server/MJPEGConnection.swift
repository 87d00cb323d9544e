import Access
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Pipeline
import RelayCore
import WireProtocol

/// Serves `GET /api/streams/{id}/mjpeg`: one stream as MJPEG over HTTP
/// (`multipart/x-mixed-replace`), for the tools that already read it
/// (VLC, ffmpeg, GStreamer, an `<img>` tag, Home Assistant).
///
/// The client is a viewer like any other: it is registered with the hub,
/// gets a mailbox (latest wins), a `ViewerChannelHandler` that writes it
/// onto the socket below NIO's HTTP encoder (each frame a ready-made chunk,
/// `MJPEGWire`, shared by every MJPEG client of that rendition), link
/// readings, the delivery policy's renditions, and the stall rule. Its
/// first part is the stream's newest frame. It ends when the stream ends or
/// the client goes.
struct MJPEGConnection: Sendable {
    let hub: ViewerHub
    let metrics: RelayMetrics
    let audit: AuditLog?
    /// With auth on: the client's token is leased for the response's life,
    /// so it ends when the token expires or is revoked, as a socket does.
    let access: SocketAccess?
    let logger: Logger

    /// What the client asked for in the query.
    struct Options: Equatable {
        var width: Int?
        var height: Int?
        var fps: Double?
        var quality: QualityPreference = .auto

        init() {}

        /// `width`, `height` (the rendition at least that large), `fps` (a
        /// cap) and `quality` (as for WebSocket viewers); a bad value is refused with its reason.
        init(query: [String: String]) throws(Invalid) {
            func dimension(_ name: String) throws(Invalid) -> Int? {
                guard let raw = query[name] else { return nil }
                guard let n = Int(raw), (1...16_384).contains(n) else { throw Invalid(reason: "\(name) must be a whole number of pixels from 1 to 16384, got \"\(raw.prefix(32))\"") }
                return n
            }
            width = try dimension("width")
            height = try dimension("height")
            if let raw = query["fps"] {
                guard let n = Double(raw), n > 0, n <= 120 else { throw Invalid(reason: "fps must be a number above 0 and at most 120, got \"\(raw.prefix(32))\"") }
                fps = n
            }
            if let raw = query["quality"] {
                guard let q = QualityPreference(rawValue: raw) else { throw Invalid(reason: "quality must be auto, full or low, got \"\(raw.prefix(32))\"") }
                quality = q
            }
        }

        /// From the request's query (the first of a name counts).
        init(request: Request) throws(Invalid) {
            try self.init(query: Dictionary(request.uri.queryParameters.map { (String($0.key), String($0.value)) }) { first, _ in first })
        }

        struct Invalid: Error { let reason: String }
    }

    func response(streamID id: String, request: Request, context: RelayRequestContext) -> Response {
        let scope = context.grant?.scope ?? .all
        // A stream the token does not cover does not exist, as far as its holder can tell.
        guard scope.allows(id), hub.latestJPEG(of: id).known else {
            return refusal(.notFound, "no such stream: it is not live (an MJPEG client is served a live stream only)", id)
        }
        let options: Options
        do throws(Options.Invalid) {
            options = try Options(request: request)
        } catch {
            return refusal(.badRequest, error.reason, id)
        }
        guard let channel = context.channel else { return refusal(.serviceUnavailable, "the connection closed", id) }
        // Browsers show a part only once the next part's headers came (`MJPEGWire`).
        let browser = request.headers[.userAgent]?.contains("Mozilla/") ?? false
        let format: ViewerFormat = browser ? .mjpegHeadersAhead : .mjpeg
        let client = context.peerAddress
        let (ended, ending) = AsyncStream.makeStream(of: ViewerLeaveReason.self)
        let writer = ViewerChannelHandler(mailbox: ViewerMailbox(controlMessages: false), metrics: metrics, readProbes: false) {
            ending.yield(.finished)  // the stream ended and its last frames are written
        }
        let added: ViewerHub.Viewer?
        do throws(LimitRefusal) {
            added = try hub.addViewer(format: format, streams: [id], quality: options.quality, scope: scope, tokenID: context.grant?.tokenID,
                                      writer: writer, remoteAddress: client, eventLoop: channel.eventLoop, close: { channel.close(promise: nil) })
        } catch {
            metrics.limitHit(error.limit)
            logger.notice("MJPEG client refused: a limit is reached", metadata: ["reason": "\(error.reason)", "remote": "\(client)"])
            return refusal(.serviceUnavailable, error.reason, id)
        }
        guard let viewer = added else { return refusal(.serviceUnavailable, "the relay is shutting down", id) }
        let hub = hub
        if options.width != nil || options.height != nil || options.fps != nil {
            hub.setView(viewer.id, stream: id, StreamView(width: options.width, height: options.height, maxFPS: options.fps))
        }
        // However the response goes (the client leaves, even before its body starts), the viewer goes with it.
        channel.closeFuture.whenComplete { _ in
            ending.yield(.closed)
            hub.removeViewer(viewer.id, reason: .closed)
        }
        let logger = logger.with(metadataKey: "viewer_id", value: "\(viewer.id)")
        logger.info("MJPEG client connected", metadata: ["stream_id": "\(id)", "remote": "\(client)"])
        let identity = AuditEvent.Identity(grant: context.grant, role: .viewer, client: client)
        let started = ContinuousClock.now
        audit?.record(.sessionStarted(kind: .viewer, session: viewer.id, identity: identity, streams: [id]))
        let audit = audit
        let headers: HTTPFields = [
            .contentType: MJPEGWire.contentType,
            .cacheControl: "no-cache, no-store, must-revalidate",
            .init("Pragma")!: "no-cache",
            // nginx and other proxies must pass each part on as it comes.
            .init("X-Accel-Buffering")!: "no",
            .connection: "close",
        ]
        let access = self.access
        let lease = context.grant.flatMap { access?.lease($0, acting: .viewer) }
        if let lease { channel.closeFuture.whenComplete { _ in access?.sessions.remove(lease) } }
        return Response(status: .ok, headers: headers, body: ResponseBody { body in
            defer { ending.finish() }
            // An MJPEG client cannot be told its token is about to end; it is cut off when it does.
            if let lease { access?.watch(lease) { end in ending.yield(ViewerLeaveReason(end)) } }
            defer { lease.map { access?.sessions.remove($0) } }
            do {
                try await body.write(ByteBuffer(string: MJPEGWire.opening(headersAhead: format == .mjpegHeadersAhead)))
                // The head and the opening were handed to the channel first (the
                // writer's writes reach the loop in order), so parts follow them.
                try await channel.eventLoop.submit {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(writer, position: .before(pipeline.handler(type: HTTPResponseEncoder.self)))
                }.get()
            } catch {
                hub.removeViewer(viewer.id, reason: .closed)
                audit?.record(.sessionEnded(kind: .viewer, session: viewer.id, identity: identity, streams: [id],
                                            duration: .now - started, frames: 0, reason: ViewerLeaveReason.closed.rawValue))
                return
            }
            var reason = ViewerLeaveReason.closed
            for await end in ended {
                reason = end
                break
            }
            hub.removeViewer(viewer.id, reason: reason)
            // Out of the way before the response's last chunk goes through the encoder.
            _ = try? await channel.eventLoop.submit { channel.pipeline.syncOperations.removeHandler(writer) }.get().get()
            logger.info("MJPEG client left", metadata: ["reason": "\(reason.rawValue)", "frames": "\(viewer.mailbox.statistics.delivered)"])
            audit?.record(.sessionEnded(kind: .viewer, session: viewer.id, identity: identity, streams: [id],
                                        duration: .now - started, frames: viewer.mailbox.statistics.delivered, reason: reason.rawValue))
            if reason == .finished {
                try? await body.finish(nil)
            } else if reason == .tokenExpired || reason == .tokenRevoked {
                channel.close(promise: nil)
            }
        })
    }

    private func refusal(_ status: HTTPResponse.Status, _ reason: String, _ id: String) -> Response {
        .json(.object([("error", .string(reason)), ("stream_id", .string(id))]), status: status)
    }
}
