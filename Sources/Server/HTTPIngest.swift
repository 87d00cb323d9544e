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
    let hub: ViewerHub
    let live: LiveConfiguration
    let metrics: RelayMetrics
    let maxFrameBytes: Int
    let audit: AuditLog?
    let logger: Logger
    /// One-frame-per-request streams, kept between their requests.
    private let posting = NIOLockedValueBox<[String: Ingest]>([:])

    init(hub: ViewerHub, live: LiveConfiguration, metrics: RelayMetrics, maxFrameBytes: Int, audit: AuditLog?, logger: Logger) {
        self.hub = hub
        self.live = live
        self.metrics = metrics
        self.maxFrameBytes = maxFrameBytes
        self.audit = audit
        self.logger = logger
    }

    /// A stream fed over HTTP: its session with the hub and its pipeline.
    final class Ingest: Sendable {
        let streamID: String
        let session: StreamSessionHandle
        /// Its stages' per-stream state: requests of one stream may overlap, so one at a time.
        let runner: Mutex<ReloadFollowingRunner>
        let logger: Logger
        let identity: AuditEvent.Identity
        let started = ContinuousClock.now
        let frames = NIOLockedValueBox((received: 0, taken: 0, ended: false))

        init(streamID: String, session: StreamSessionHandle, runner: sending ReloadFollowingRunner, identity: AuditEvent.Identity, logger: Logger) {
            self.streamID = streamID
            self.session = session
            self.runner = Mutex(runner)
            self.identity = identity
            self.logger = logger
        }
    }

    func response(streamID id: String, request: Request, context: RelayRequestContext) async -> Response {
        if let grant = context.grant, !grant.scope.allows(id) {
            return refusal(.forbidden, "the token does not cover stream \(id)", id)
        }
        guard StreamID.isValid(Substring(id)) else { return refusal(.badRequest, StreamID.rule, id) }
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
        if let boundary = Self.boundary(openingBody: first) {
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

    /// The boundary of a multipart body that begins with its first delimiter line (`--ffmpeg`).
    static func boundary(openingBody first: ByteBuffer) -> String? {
        let view = first.readableBytesView
        guard view.starts(with: Array("--".utf8)), let lineEnd = view.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let line = String(decoding: view[(view.startIndex + 2)..<lineEnd], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return line.isEmpty || line.utf8.count > 200 ? nil : line
    }

    // MARK: The two kinds of request

    private func multipart(_ id: String, boundary: String, body: inout RequestBody.AsyncIterator, first: ByteBuffer?,
                           context: RelayRequestContext, client: String) async -> Response {
        let ingest: Ingest
        switch start(id, context: context, client: client, kind: "multipart") {
        case .success(let started): ingest = started
        case .failure(let refused): return refused.response
        }
        var reader = MultipartFrameReader(boundary: boundary, maxPartBytes: maxFrameBytes)
        var problem: String?
        do {
            var next = first
            if next == nil { next = try await body.next() }
            reading: while let chunk = next {
                next = nil
                for event in reader.append(chunk) {
                    switch event {
                    case .part(let jpeg): submit(jpeg, to: ingest)
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
                    if case .part(let jpeg) = event { submit(jpeg, to: ingest) }
                    if case .invalid(let reason) = event { problem = reason }
                }
            }
        } catch {
            problem = problem ?? "the body broke off: \(error)"
        }
        let reason = ingest.session.endReason ?? .closed
        end(ingest, reason: reason)
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
        let ingest: Ingest
        if let existing, existing.session.endReason == nil {
            ingest = existing
        } else {
            switch start(id, context: context, client: client, kind: "image/jpeg") {
            case .success(let started): ingest = started
            case .failure(let refused): return refused.response
            }
            posting.withLockedValue { $0[id] = ingest }
        }
        let (seq, result) = submit(body, to: ingest)
        var members: [(key: String, value: JSONValue)] = [("stream_id", .string(id)), ("seq", .number(Double(seq))),
                                                         ("taken", .bool(result.taken))]
        if let code = result.reasonCode { members.append(("reason", .string(code))) }
        return .json(.object(members), status: result.taken ? .ok : .unprocessableContent)
    }

    // MARK: A stream's life

    struct Refused: Error { let response: Response }

    /// Connects the stream (replacing an older streamer of it), and starts
    /// following what the hub and housekeeping ask of it (a close).
    private func start(_ id: String, context: RelayRequestContext, client: String, kind: String) -> Result<Ingest, Refused> {
        var logger = logger
        logger[metadataKey: "stream_id"] = "\(id)"
        let (commands, continuation) = AsyncStream.makeStream(of: StreamSessionHandle.Command.self, bufferingPolicy: .bufferingNewest(16))
        let session = StreamSessionHandle(id: hub.makeSessionID(), remoteAddress: client, commands: continuation)
        let connected: (replaced: StreamSessionHandle?, firstSeq: UInt64)?
        do throws(LimitRefusal) {
            connected = try hub.connectStream(id, session: session)
        } catch {
            metrics.limitHit(error.limit)
            return .failure(Refused(response: refusal(.serviceUnavailable, error.reason, id)))
        }
        guard let (replaced, _) = connected else {
            return .failure(Refused(response: refusal(.serviceUnavailable, "the relay is shutting down", id)))
        }
        metrics.streamerConnected()
        let stageContext = StageContext(streamID: id, logger: logger, sink: hub)
        let metrics = metrics
        let runner = ReloadFollowingRunner(streamID: id, live: live) { pipeline in pipeline.makeRunner(context: stageContext, observer: metrics) }
        let pipelineName = runner.pipelineName
        hub.streamRunsPipeline(id, pipelineName)
        let identity = AuditEvent.Identity(grant: context.grant, role: .streamer, client: client)
        let ingest = Ingest(streamID: id, session: session, runner: runner, identity: identity, logger: logger)
        replaced?.close(.replaced)
        logger.info("streamer connected over HTTP", metadata: ["remote": "\(client)", "body": "\(kind)", "pipeline": "\(pipelineName)"])
        audit?.record(.sessionStarted(kind: .streamer, session: "s-\(session.id)", identity: identity, streams: [id]))
        // A close asked by the hub or housekeeping (replaced, idle, errors, shutdown): a
        // multipart request sees it and stops reading; a posting stream ends here.
        Task {
            for await command in commands {
                if case .close(let reason) = command {
                    self.end(ingest, reason: reason)
                    return
                }
            }
        }
        return .success(ingest)
    }

    /// Ends the stream once, whoever asks first.
    private func end(_ ingest: Ingest, reason: StreamEndReason) {
        let first = posting.withLockedValue { streams -> Bool in
            if streams[ingest.streamID] === ingest { streams[ingest.streamID] = nil }
            return ingest.frames.withLockedValue { counts in
                defer { counts.ended = true }
                return !counts.ended
            }
        }
        guard first else { return }
        hub.endStream(ingest.streamID, session: ingest.session, reason: reason)
        metrics.streamerDisconnected()
        let counts = ingest.frames.withLockedValue { $0 }
        ingest.logger.info("HTTP streamer ended", metadata: ["reason": "\(reason.rawValue)", "frames": "\(counts.received)"])
        audit?.record(.sessionEnded(kind: .streamer, session: "s-\(ingest.session.id)", identity: ingest.identity, streams: [ingest.streamID],
                                    duration: .now - ingest.started, frames: counts.taken, reason: reason.rawValue))
    }

    /// Runs one JPEG through the stream's pipeline, as a WebSocket frame would be.
    @discardableResult
    private func submit(_ jpeg: ByteBuffer, to ingest: Ingest) -> (UInt64, PipelineResult) {
        let seq = hub.streamActivity(ingest.streamID, isFrame: true)
        let frame = Frame(streamID: ingest.streamID, seq: seq, arrival: .now, timestamp: nil, payload: .binary(jpeg))
        metrics.frameReceived()
        let result = ingest.runner.withLock { runner -> PipelineResult in
            if let move = runner.followReload() { hub.streamRunsPipeline(ingest.streamID, move.to) }
            return runner.run(frame)
        }
        ingest.frames.withLockedValue { counts in
            counts.received += 1
            if result.taken { counts.taken += 1 }
        }
        FrameOutcome(hub: hub, metrics: metrics, streamID: ingest.streamID).record(result, seq: seq, session: ingest.session, logger: ingest.logger)
        return (seq, result)
    }

    private func refusal(_ status: HTTPResponse.Status, _ reason: String, _ id: String) -> Response {
        .json(.object([("error", .string(reason)), ("stream_id", .string(id))]), status: status)
    }
}
