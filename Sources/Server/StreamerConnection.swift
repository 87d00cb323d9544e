import Access
import Foundation
import RelayCore
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import Pipeline
import WireProtocol

/// Serves one streamer's WebSocket: turns each message into a frame, runs
/// it through this stream's own pipeline instance, answers pings, and ends
/// the stream with the right reason when the socket closes or the server
/// closes it (timeout, errors, replaced, shutdown).
///
/// After a reload the stream moves to the pipeline the new file routes it
/// to at its next frame, with fresh stage state (`ReloadFollowingRunner`).
///
/// The pipeline runner lives in this connection's task only, so the stages'
/// per-stream state needs no locking. Commands from outside (a ping from
/// housekeeping, a close on replacement) arrive through the session handle
/// and are written by a child task, so the reader never waits on them.
///
/// Freshness from the lens: the connection pings its streamer with the
/// relay's time now and then; a streamer that echoes it beside its own
/// clock's lets the relay learn the offset (`StreamerClock`), so frames
/// that carry a capture `timestamp` reach viewers with `captured_at` on the
/// relay's clock. With `?flow=credit` every frame message is answered with
/// an `ack`, from which the streamer paces itself to its uplink.
struct StreamerConnection {
    let streamID: String
    let hub: ViewerHub
    let live: LiveConfiguration
    let metrics: RelayMetrics
    let configuration: RelayConfiguration
    /// With auth on: the token the socket was let in with; it ends the stream when it expires or is revoked.
    let grant: AccessGrant?
    let access: SocketAccess?
    /// The real client address (behind a trusted proxy, the one it named).
    let client: String
    let audit: AuditLog?
    /// What it asked for in its query (`flow=credit`: an ack per frame).
    var options = StreamerOptions()
    var logger: Logger

    func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, context: RelayRequestContext) async {
        guard let channel = context.channel else { return }  // closed before it started
        let lease = grant.flatMap { access?.lease($0, acting: .streamer) }
        defer { lease.map { access?.sessions.remove($0) } }
        var logger = logger
        logger[metadataKey: "stream_id"] = "\(streamID)"
        // Bounded, keeping the newest: a client that floods pings and never
        // reads loses old pongs, never the close command that comes last.
        let (commands, continuation) = AsyncStream.makeStream(of: StreamSessionHandle.Command.self, bufferingPolicy: .bufferingNewest(256))
        let session = StreamSessionHandle(id: hub.makeSessionID(), remoteAddress: client, commands: continuation)
        let connected: (replaced: StreamSessionHandle?, firstSeq: UInt64)?
        do throws(LimitRefusal) {
            connected = try hub.connectStream(streamID, session: session)
        } catch {
            // Let in by the gate together with others that took the last places.
            metrics.limitHit(error.limit)
            logger.notice("streamer refused after the upgrade: a limit is reached", metadata: ["reason": "\(error.reason)"])
            try? await outbound.close(.unknown(Self.tryAgainLater), reason: error.reason)
            return
        }
        guard let (replaced, _) = connected else {
            try? await outbound.close(.goingAway, reason: StreamEndReason.shutdown.rawValue)
            return
        }
        metrics.streamerConnected()
        defer { metrics.streamerDisconnected() }
        let identity = AuditEvent.Identity(grant: grant, role: .streamer, client: client)
        let sessionName = "s-\(session.id)"
        let started = ContinuousClock.now
        var accepted = 0
        audit?.record(.sessionStarted(kind: .streamer, session: sessionName, identity: identity, streams: [streamID]))
        let stageContext = StageContext(streamID: streamID, logger: logger, sink: hub)
        var runner = ReloadFollowingRunner(streamID: streamID, live: live) { [metrics] pipeline in
            pipeline.makeRunner(context: stageContext, observer: metrics)
        }
        hub.streamRunsPipeline(streamID, runner.pipelineName)
        if let replaced {
            logger.info("stream connection replaced by a new one", metadata: ["remote": "\(session.remoteAddress)", "previous_remote": "\(replaced.remoteAddress)"])
            replaced.close(.replaced)
        } else {
            logger.info("streamer connected", metadata: ["remote": "\(session.remoteAddress)", "pipeline": "\(runner.pipelineName)"])
        }

        await withTaskGroup(of: Void.self) { group in
            group.addTask { [logger] in
                for await command in commands {
                    switch command {
                    case .send(let text):
                        try? await outbound.write(.text(text))
                    case .close(let reason):
                        try? await outbound.close(Self.closeCode(for: reason), reason: reason.rawValue)
                        // A client that does not answer the close frame is cut off, on the
                        // relay's clock; an answer ends the reading, which cancels this wait.
                        if (try? await configuration.clock.sleep(for: RelayServer.webSocketCloseTimeout)) != nil {
                            logger.info("streamer did not answer the relay's Close; its connection is closed",
                                        metadata: ["waited": "\(RelayServer.webSocketCloseTimeout)"])
                        }
                        channel.close(promise: nil)
                        return
                    }
                }
            }
            group.addTask {
                // A few pings at first, for a good offset soon, then one
                // every ten seconds of the relay's clock to follow a drifting camera clock.
                var sent = 0
                let clock = configuration.clock
                while !Task.isCancelled {
                    session.send(WireMessage.clockPing(serverTime: clock.now.millisecondsSince1970))
                    sent += 1
                    do { try await clock.sleep(for: sent < Self.quickClockPings ? .seconds(1) : .seconds(10)) } catch { return }
                }
            }
            if let lease, let access {
                let logger = logger
                access.watch(lease, warningLead: access.expiryWarning, warn: { grant, now in
                    session.send(TokenLease.expiringMessage(grant, now: now))
                }, end: { end in
                    logger.notice("streamer's token ended; closing the stream", metadata: ["reason": "\(end.reason)"])
                    session.close(end.streamEndReason)
                })
            }
            do {
                // Once a close is requested, messages are ignored but still
                // read, so the client's close reply ends the loop at once.
                let rate = configuration.limits.maxStreamMessagesPerSecond
                var allowance = rate > 0 ? TokenBucket(rate: rate, burst: rate) : nil
                var overLimit = 0
                var clock = StreamerClock()
                for try await message in inbound.messages(maxSize: configuration.maxMessageBytes) where session.endReason == nil {
                    guard allowance?.take(at: configuration.clock.instant) != false else {
                        // Dropped before the pipeline, so a flood costs a read and nothing more.
                        metrics.limitHit("stream_messages")
                        if overLimit % 1000 == 0 {
                            logger.warning("streamer exceeds the message rate limit; dropping the excess", metadata: [
                                "limit_per_second": "\(rate)", "dropped_so_far": "\(overLimit + 1)"])
                        }
                        overLimit += 1
                        continue
                    }
                    // Frames stay synchronous; only a token refresh awaits (the authority).
                    switch handle(message, runner: &runner, clock: &clock, session: session, logger: logger) {
                    case .delivered: accepted += 1
                    case .refresh(let token): await refresh(with: token, lease: lease, session: session, logger: logger)
                    case .done: break
                    }
                }
            } catch {
                // swift-websocket stops reassembling as soon as a message
                // passes the limit, so an endless message never fills memory.
                if Self.isOverSizeLimit(error) {
                    metrics.limitHit("message_size")
                    logger.warning("streamer closed: message over the size limit", metadata: ["max_bytes": "\(configuration.maxMessageBytes)"])
                } else if session.endReason == nil {
                    logger.warning("streamer connection failed", metadata: ["error": "\(error)"])
                }
            }
            continuation.finish()
            group.cancelAll()
        }
        let reason = session.endReason ?? .closed
        if reason != .replaced {
            hub.endStream(streamID, session: session, reason: reason)
        }
        audit?.record(.sessionEnded(kind: .streamer, session: sessionName, identity: identity, streams: [streamID],
                                    duration: .now - started, frames: accepted, reason: reason.rawValue))
    }

    /// What became of one message.
    private enum Handled {
        /// A frame the pipeline delivered.
        case delivered
        /// A token refresh, which needs the authority (an await).
        case refresh(token: String)
        case done
    }

    /// Handles one message, without waiting on anything.
    private func handle(_ message: WebSocketMessage, runner: inout ReloadFollowingRunner, clock: inout StreamerClock,
                        session: StreamSessionHandle, logger: Logger) -> Handled {
        // Stamped on the relay's clock: the timed rules frames carry (picture
        // health, rate limits, a viewer's frame-rate cap) run on it.
        let arrival = configuration.clock.instant
        let receivedAt = configuration.clock.now.millisecondsSince1970
        if let move = runner.followReload() {
            hub.streamRunsPipeline(streamID, move.to)
            logger.notice("stream follows the reloaded configuration with fresh stage state", metadata: [
                "from_pipeline": "\(move.from)", "pipeline": "\(move.to)", "generation": "\(move.generation)"])
        }
        let parsed: InboundMessage
        switch message {
        case .binary(let bytes):
            switch BinaryFrameMessage.parse(bytes) {
            case .frame(let jpeg, let timestamp):
                let seq = hub.streamActivity(streamID, isFrame: true)
                parsed = .frame(Frame(streamID: streamID, seq: seq, arrival: arrival, timestamp: timestamp, receivedAt: receivedAt,
                                      payload: .binary(jpeg)))
            case .invalid(let rejection):
                hub.streamActivity(streamID, isFrame: false)
                parsed = .invalid(rejection)
            }
        case .text(let text):
            // Only a frame takes a seq: parse, then stamp it.
            switch InboundMessage.streamer(text: text, streamID: streamID, seq: 0, arrival: arrival) {
            case .frame(let frame):
                let seq = hub.streamActivity(streamID, isFrame: true)
                parsed = .frame(Frame(streamID: streamID, seq: seq, arrival: arrival, timestamp: frame.timestamp, receivedAt: receivedAt,
                                      payload: frame.payload))
            case let other:
                hub.streamActivity(streamID, isFrame: false)
                parsed = other
            }
        }
        switch parsed {
        case .frame(var frame):
            metrics.frameReceived()
            frame.capturedAt = frame.timestamp.flatMap { clock.captureTime(of: $0, receivedAt: frame.receivedAt) }
            let (timestamp, receivedAt, capturedAt, bytes) = (frame.timestamp, frame.receivedAt, frame.capturedAt, frame.payloadSize)
            let result = runner.run(frame)
            record(result, seq: frame.seq, session: session, logger: logger)
            if options.flow == .credit {
                session.send(WireMessage.streamerAck(seq: frame.seq, taken: result.taken, reason: result.reasonCode, timestamp: timestamp,
                                                     receivedAt: receivedAt, capturedAt: capturedAt, bytes: bytes))
            }
            if case .delivered = result { return .delivered }
        case .ping:
            session.send(WireMessage.pong(serverTime: receivedAt))
        case .pong:
            break
        case .clockPong(let serverTime, let clientTime):
            let now = receivedAt
            let before = clock.offset
            if clock.record(serverSent: serverTime, clientTime: clientTime, serverReceived: now), let offset = clock.offset {
                if before == nil {
                    logger.info("streamer's clock measured", metadata: ["offset_ms": "\(offset)", "round_trip_ms": "\(clock.roundTrip ?? 0)"])
                }
                // Other nodes place this camera's capture times with it; said again with each pong, so a node that joins later learns it.
                hub.cluster?.localStreamClock(streamID, offset: offset)
            }
        case .unknownType(let type):
            session.send(WireMessage.error("unknown message type \"\(type)\""))
            logger.notice("unknown message type from streamer", metadata: ["type": "\(type.prefix(64))"])
        case .subscribe, .setQuality, .ack, .view:
            session.send(WireMessage.error("subscribe, set_quality, ack and view are viewer messages"))
        case .refresh(let token):
            return .refresh(token: token)
        case .invalid(let rejection):
            metrics.frameReceived()
            session.send(WireMessage.error(rejection.detail))
            record(runner.reject(rejection), seq: nil, session: session, logger: logger)
            if options.flow == .credit {
                session.send(WireMessage.streamerAck(seq: nil, taken: false, reason: rejection.code, timestamp: nil,
                                                     receivedAt: receivedAt, capturedAt: nil, bytes: Self.size(of: message)))
            }
        }
        return .done
    }

    private static func size(of message: WebSocketMessage) -> Int {
        switch message {
        case .text(let text): text.utf8.count
        case .binary(let bytes): bytes.readableBytes
        }
    }

    /// Clock pings a second apart after connecting, before they slow to one every ten seconds.
    static let quickClockPings = 5

    /// Takes a fresh token for the socket, or says why not (the old one stays).
    private func refresh(with token: String, lease: TokenLease?, session: StreamSessionHandle, logger: Logger) async {
        guard let lease, let access else {
            session.send(WireMessage.error("auth is off; there is no token to refresh"))
            return
        }
        do throws(AuthFailure) {
            let fresh = try await lease.refresh(with: token, authority: access.authority)
            session.send(TokenLease.refreshedMessage(fresh))
            logger.info("streamer token refreshed", metadata: ["subject": "\(fresh.subject)", "expires": "\(fresh.expires)"])
        } catch {
            session.send(WireMessage.error("refresh refused: \(error.reason)"))
            logger.notice("streamer token refresh refused", metadata: ["reason": "\(error.reason)"])
        }
    }

    /// The socket failed because a message passed `maxMessageBytes`: NIO's
    /// decoder says so for one frame, swift-websocket for a message of many
    /// frames, with an error type of its own that is not public, whose
    /// payload is NIO's public close code (read by reflection rather than
    /// by matching the error's description).
    static func isOverSizeLimit(_ error: any Error) -> Bool {
        if let error = error as? NIOWebSocketError, error == .invalidFrameLength { return true }
        return Mirror(reflecting: error).children.contains { ($0.value as? WebSocketErrorCode) == .messageTooLarge }
    }

    /// A limit refused the socket after its upgrade; try again later. In the
    /// private range (like 4001, 4003): clients built on swift-websocket treat
    /// RFC 6455's unassigned 1013 as a protocol error.
    static let tryAgainLater: UInt16 = 4013

    /// The WebSocket close code a streamer sees for each way the relay ends its stream.
    static func closeCode(for reason: StreamEndReason) -> WebSocketErrorCode {
        switch reason {
        case .shutdown: .goingAway
        case .tokenExpired: .unknown(TokenEnd.expired.closeCode)
        case .tokenRevoked: .unknown(TokenEnd.revoked.closeCode)
        default: .normalClosure
        }
    }

    private func record(_ result: PipelineResult, seq: UInt64?, session: StreamSessionHandle, logger: Logger) {
        FrameOutcome(hub: hub, metrics: metrics, streamID: streamID).record(result, seq: seq, session: session, logger: logger)
    }
}
