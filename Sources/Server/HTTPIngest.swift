import Foundation
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Pipeline
import RelayCore
import Synchronization
import WireProtocol

/// Serves `POST /api/streams/{id}/ingest`: frames from senders that speak
/// HTTP, not our WebSocket protocol — ffmpeg (`-f mpjpeg`), an IP camera
/// or ESP32-CAM pushing MJPEG, curl or a small device posting one JPEG.
///
/// - `multipart/x-mixed-replace` (or any `multipart/*`): one long request;
///   each part is a frame (`MultipartFrameReader`). The stream lives while
///   the body does, and ends (`closed`) with it.
/// - `image/jpeg`: one frame per request. The stream lives across requests
///   and ends as any idle stream does (`--idle-timeout`).
///
/// Either way the frames take the same path as a WebSocket streamer's: the
/// stream's own pipeline (validation, error counting, health, renditions),
/// the same start and end for viewers, the same replacement rule (a newer
/// streamer of the id, on any protocol, replaces the older).
final class HTTPIngest: Sendable {
    let services: StreamFeed.Services
    let maxFrameBytes: Int
    /// With auth on: a long multipart body's token is leased for its life, so its expiry or revocation ends the stream.
    let access: SocketAccess?
    let logger: Logger
    /// One-frame-per-request streams, kept between their requests.
    private let posting = NIOLockedValueBox<[String: StreamFeed]>([:])

    init(services: StreamFeed.Services, maxFrameBytes: Int, access: SocketAccess? = nil, logger: Logger) {
        self.services = services
        self.maxFrameBytes = maxFrameBytes
        self.access = access
        self.logger = logger
    }

    func response(streamID id: String, request: Request, context: RelayRequestContext) async -> Response {
        if let grant = context.grant, !grant.scope.allows(id) {
            return refusal(.forbidden, "the token does not cover stream \(id)", id)
        }
        guard StreamID.isValid(Substring(id)) else { return refusal(.badRequest, StreamID.rule, id) }
        if let source = services.live.current.config.source(of: id) {
            return refusal(.conflict, "stream \(id) is pulled by the relay from \(source.url) (\"sources\" in the pipelines file)", id)
        }
        let contentType = request.headers[.contentType] ?? ""
        let client = context.peerAddress
        var body = request.body.makeAsyncIterator()
        if let boundary = MultipartFrameReader.boundary(ofContentType: contentType) {
            return await multipart(id, boundary: boundary, body: &body, first: nil, context: context, client: client)
        }
        if contentType.lowercased().hasPrefix("image/jpeg") {
            return await single(id, body: &body, first: nil, context: context, client: client)
        }
        // ffmpeg's `-f mpjpeg` over HTTP names no type, and curl's `--data-binary`
        // says a form: the body says what it is.
        let unsaid = ["application/octet-stream", "application/x-www-form-urlencoded"]
        guard contentType.isEmpty || unsaid.contains(where: contentType.lowercased().hasPrefix) else {
            return refusal(.unsupportedMediaType, Self.wrongType(contentType), id)
        }
        let first: ByteBuffer?
        do { first = try await body.next() } catch { return refusal(.badRequest, "the body broke off: \(error)", id) }
        guard let first else { return refusal(.badRequest, "the body is empty: send a JPEG, or multipart parts", id) }
        if let boundary = MultipartFrameReader.boundary(openingBody: first) {
            return await multipart(id, boundary: boundary, body: &body, first: first, context: context, client: client)
        }
        if first.readableBytesView.starts(with: [0xFF, 0xD8]) {
            return await single(id, body: &body, first: first, context: context, client: client)
        }
        return refusal(.unsupportedMediaType, Self.wrongType(contentType), id)
    }

    private static func wrongType(_ contentType: String) -> String {
        "send image/jpeg (one frame a request) or multipart/x-mixed-replace;boundary=… (a stream of them), not \"\(contentType.prefix(64))\""
    }

    // MARK: The two kinds of request

    private func multipart(_ id: String, boundary: String, body: inout RequestBody.AsyncIterator, first: ByteBuffer?,
                           context: RelayRequestContext, client: String) async -> Response {
        let ingest: StreamFeed
        switch start(id, context: context, client: client, kind: "multipart") {
        case .success(let started): ingest = started
        case .failure(let refused): return refused.response
        }
        // A body may last hours: its token ends it as it ends a WebSocket streamer
        // (one JPEG a request needs no lease: each request shows its token anew).
        let access = access
        let lease = context.grant.flatMap { access?.lease($0, acting: .streamer) }
        if let lease { access?.watch(lease) { end in ingest.session.close(end.streamEndReason) } }
        defer { lease.map { access?.sessions.remove($0) } }
        var reader = MultipartFrameReader(boundary: boundary, maxPartBytes: maxFrameBytes)
        var problem: String?
        do {
            var next = first
            if next == nil { next = try await body.next() }
            reading: while let chunk = next {
                next = nil
                for event in reader.append(chunk) {
                    switch event {
                    case .part(let jpeg):
                        guard ingest.session.endReason == nil else { break reading }
                        ingest.submit(jpeg)
                    case .invalid(let reason):
                        problem = reason
                        break reading
                    }
                }
                if ingest.session.endReason != nil { break }
                next = try await body.next()
            }
            if problem == nil, ingest.session.endReason == nil {
                for event in reader.finish() {
                    if case .part(let jpeg) = event { ingest.submit(jpeg) }
                    if case .invalid(let reason) = event { problem = reason }
                }
            }
        } catch {
            problem = problem ?? "the body broke off: \(error)"
        }
        let reason = ingest.session.endReason ?? .closed
        ingest.end(reason: reason)
        let counts = ingest.frames.withLockedValue { $0 }
        if let problem {
            ingest.logger.warning("HTTP ingest body refused", metadata: ["reason": "\(problem)", "frames": "\(counts.received)"])
            return refusal(.badRequest, problem, id)
        }
        return .json(.object([("stream_id", .string(id)), ("frames", .number(Double(counts.received))),
                              ("taken", .number(Double(counts.taken))), ("ended", .string(reason.rawValue))]))
    }

    private func single(_ id: String, body chunks: inout RequestBody.AsyncIterator, first: ByteBuffer?,
                        context: RelayRequestContext, client: String) async -> Response {
        var body = first ?? ByteBuffer()
        do {
            while var chunk = try await chunks.next() {
                guard body.readableBytes + chunk.readableBytes <= maxFrameBytes else {
                    return refusal(.contentTooLarge, "a frame is at most \(maxFrameBytes) bytes", id)
                }
                body.writeBuffer(&chunk)
            }
        } catch {
            return refusal(.badRequest, "the body broke off: \(error)", id)
        }
        let existing = posting.withLockedValue { $0[id] }
        let ingest: StreamFeed
        if let existing, existing.session.endReason == nil {
            ingest = existing
        } else {
            switch start(id, context: context, client: client, kind: "image/jpeg") {
            case .success(let started): ingest = started
            case .failure(let refused): return refused.response
            }
            posting.withLockedValue { $0[id] = ingest }
        }
        let (seq, result) = ingest.submit(body)
        var members: [(key: String, value: JSONValue)] = [("stream_id", .string(id)), ("seq", .number(Double(seq))),
                                                         ("taken", .bool(result.taken))]
        if let code = result.reasonCode { members.append(("reason", .string(code))) }
        return .json(.object(members), status: result.taken ? .ok : .unprocessableContent)
    }

    // MARK: A stream's life

    struct Refused: Error { let response: Response }

    /// Connects the stream; a one-frame-per-request stream is forgotten when it ends.
    private func start(_ id: String, context: RelayRequestContext, client: String, kind: String) -> Result<StreamFeed, Refused> {
        let identity = AuditEvent.Identity(grant: context.grant, role: .streamer, client: client)
        do throws(StreamFeed.Refusal) {
            let posting = posting
            return .success(try StreamFeed.open(id, services: services, identity: identity, kind: "HTTP \(kind)", logger: logger) { feed, _ in
                posting.withLockedValue { streams in
                    if streams[feed.streamID] === feed { streams[feed.streamID] = nil }
                }
            })
        } catch .limit(let reason) {
            return .failure(Refused(response: refusal(.serviceUnavailable, reason, id)))
        } catch {
            return .failure(Refused(response: refusal(.serviceUnavailable, "the relay is shutting down", id)))
        }
    }

    private func refusal(_ status: HTTPResponse.Status, _ reason: String, _ id: String) -> Response {
        .json(.object([("error", .string(reason)), ("stream_id", .string(id))]), status: status)
    }
}
