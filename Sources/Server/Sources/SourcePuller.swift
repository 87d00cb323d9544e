import AsyncHTTPClient
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Pipeline
import RelayCore
import Synchronization
import WireProtocol

/// Pulls one camera for as long as it is listed: connects, publishes its
/// pictures as the stream, and when the camera goes away ends the stream
/// with `source_lost` and tries again, waiting longer each time.
///
/// A camera serving `multipart/x-mixed-replace` (MJPEG) is read as one
/// long response; one serving `image/jpeg` is asked again every
/// `pollInterval`. Either is lost when no picture came for `stallTimeout`
/// or the connection fails. In a cluster it pulls only while this node
/// holds the source's lease.
final class SourcePuller: Sendable {
    let source: PulledSource
    let services: StreamFeed.Services
    let leases: any SourceLeases
    let client: HTTPClient
    let maxFrameBytes: Int
    /// What the stall timeout, the polls, the retries and the lease renewals count on.
    let clock: any RelayClock
    let logger: Logger
    /// What `/api/streams`, `/admin` and `/readyz` show.
    let status: NIOLockedValueBox<SourceStatus>

    init(source: PulledSource, services: StreamFeed.Services, leases: any SourceLeases, client: HTTPClient, maxFrameBytes: Int,
         clock: any RelayClock = SystemRelayClock(), logger: Logger) {
        self.source = source
        self.clock = clock
        self.services = services
        self.leases = leases
        self.client = client
        self.maxFrameBytes = maxFrameBytes
        var logger = logger
        logger[metadataKey: "stream_id"] = "\(source.streamID)"
        logger[metadataKey: "source"] = "\(source.url)"
        self.logger = logger
        status = NIOLockedValueBox(SourceStatus(source: source))
    }

    /// How one connection to the camera ended.
    enum Ending: Equatable {
        /// It broke, refused, or sent nothing for `stallTimeout`: try again after a wait.
        case lost(String)
        /// Another node holds the lease now.
        case leaseLost(String)
        /// The relay ended the stream (errors, replaced, idle): try again after a wait.
        case endedByRelay(StreamEndReason)
        /// The relay is shutting down, or the source was removed.
        case stopped
    }

    /// Until cancelled (the source removed, the relay stopping); gives up its lease then.
    func run() async {
        let backoff = RetryBackoff(first: source.retryMin, cap: source.retryMax)
        var failures = 0
        pulling: while !Task.isCancelled, !services.hub.isShuttingDown {
            switch await leases.holdSource(source.streamID) {
            case .held: break
            case .heldBy(let node):
                change { $0.standby(holder: node) }
                try? await clock.sleep(for: leases.leaseRenewal)
                continue
            case .unknown(let reason):
                change { $0.standby(holder: nil, reason: reason) }
                try? await clock.sleep(for: leases.leaseRenewal)
                continue
            }
            change { $0.connecting(attempt: failures + 1) }
            let (ending, gotFrames) = await pullOnce()
            let reason: String
            switch ending {
            case .stopped:
                break pulling
            case .leaseLost(let node):
                logger.notice("source handed to another node", metadata: ["holder": "\(node)"])
                failures = 0
                continue
            case .lost(let why): reason = why
            case .endedByRelay(let end): reason = "the relay ended the stream (\(end.rawValue))"
            }
            failures = gotFrames ? 1 : failures + 1
            let wait = backoff.delay(attempt: failures)
            change { $0.lost(reason: reason, retryIn: wait) }
            let level: Logger.Level = failures == 1 ? .warning : .info
            logger.log(level: level, "source lost; retrying", metadata: [
                "reason": "\(reason)", "attempt": "\(failures)", "retry_in_ms": "\(wait.milliseconds)"])
            try? await clock.sleep(for: wait)
        }
        change { $0.stopped() }
        await leases.releaseSource(source.streamID)
    }

    private func change(_ update: (inout SourceStatus) -> Void) {
        status.withLockedValue { update(&$0) }
    }

    // MARK: One connection

    /// One connection to the camera, until it ends; the stream is opened at
    /// its first picture and ended with the connection.
    private func pullOnce() async -> (Ending, gotFrames: Bool) {
        let pictures = PictureClock(clock: clock)
        let feedBox = NIOLockedValueBox<StreamFeed?>(nil)
        let ending = await withTaskGroup(of: Ending.self) { group in
            group.addTask { await self.read(into: feedBox, pictures: pictures) }
            group.addTask { await self.watch(feedBox, pictures: pictures) }
            let first = await group.next() ?? .stopped
            group.cancelAll()
            return first
        }
        let ended: Ending = Task.isCancelled && ending != .stopped ? .stopped : ending
        if let feed = feedBox.withLockedValue({ $0 }) {
            switch ended {
            case .lost: feed.end(reason: .sourceLost)
            case .leaseLost: feed.end(reason: .replaced)
            case .endedByRelay(let reason): feed.end(reason: reason)
            case .stopped: feed.end(reason: services.hub.isShuttingDown ? .shutdown : .closed)
            }
        }
        return (ended, pictures.count > 0)
    }

    /// When the last picture came, shared by the reader and the watchdog.
    final class PictureClock: Sendable {
        private let clock: any RelayClock
        private let state: Mutex<(last: Date, count: Int)>
        init(clock: any RelayClock) {
            self.clock = clock
            state = Mutex((clock.now, 0))
        }
        func tick() {
            let now = clock.now
            state.withLock { $0 = (now, $0.count + 1) }
        }
        var last: Date { state.withLock { $0.last } }
        var count: Int { state.withLock { $0.count } }
    }

    /// Stops the connection when no picture came for `stallTimeout`, when the
    /// relay ends the stream, or when the lease goes to another node.
    private func watch(_ feedBox: NIOLockedValueBox<StreamFeed?>, pictures: PictureClock) async -> Ending {
        var nextRenewal = clock.now.addingTimeInterval(leases.leaseRenewal.seconds)
        let tick = min(source.stallTimeout / 4, .milliseconds(250))
        while !Task.isCancelled {
            try? await clock.sleep(for: tick)
            if let reason = feedBox.withLockedValue({ $0 })?.endReason {
                return reason == .shutdown ? .stopped : .endedByRelay(reason)
            }
            if services.hub.isShuttingDown { return .stopped }
            let silent = clock.now.timeIntervalSince(pictures.last)
            if silent >= source.stallTimeout.seconds {
                let what = pictures.count == 0 ? "no picture" : "no picture for \(silent.formatted(.number.precision(.fractionLength(1)))) s"
                return .lost("\(what) (stallTimeout \(source.stallTimeout.seconds) s)")
            }
            if clock.now >= nextRenewal {
                nextRenewal = clock.now.addingTimeInterval(leases.leaseRenewal.seconds)
                // Unknown (Redis away): keep pulling; a camera pulled twice beats one pulled by nobody.
                if case .heldBy(let node) = await leases.holdSource(source.streamID) { return .leaseLost(node) }
            }
        }
        return .stopped
    }

    /// Reads the camera until its connection ends.
    private func read(into feedBox: NIOLockedValueBox<StreamFeed?>, pictures: PictureClock) async -> Ending {
        var snapshotMode = false
        repeat {
            let response: HTTPClientResponse
            do {
                // A backstop only: the watchdog ends a connection that brings no picture
                // within the stall timeout, on the relay's clock.
                response = try await client.execute(try request(), timeout: .seconds(max(30, 2 * source.stallTimeout.components.seconds)))
            } catch let error as Unusable {
                return .lost(error.reason)
            } catch {
                return .lost(Task.isCancelled ? "stopped" : "cannot reach the camera: \(Self.describe(error))")
            }
            guard response.status == .ok else {
                let hint = response.status == .unauthorized || response.status == .forbidden
                    ? (source.credentials == nil ? "; it wants credentials: name them in \"credentials\"" : "; check the \(source.credentials!)") : ""
                return .lost("the camera answered \(response.status.code) \(response.status.reasonPhrase)\(hint)")
            }
            let contentType = response.headers.first(name: "content-type") ?? ""
            var body = response.body.makeAsyncIterator()
            var first: ByteBuffer?
            var boundary = MultipartFrameReader.boundary(ofContentType: contentType)
            if boundary == nil, !contentType.lowercased().hasPrefix("image/jpeg") {
                // No type, or a wrong one (ffmpeg's HTTP output, some cameras, say
                // application/octet-stream): the first bytes say which it is.
                do { first = try await body.next() } catch { return .lost("the connection broke: \(Self.describe(error))") }
                guard let opening = first else { return .lost("the camera answered an empty body") }
                boundary = MultipartFrameReader.boundary(openingBody: opening)
                guard boundary != nil || opening.readableBytesView.starts(with: [0xFF, 0xD8]) else {
                    return .lost("the camera answered Content-Type \"\(contentType.prefix(64))\" and neither MJPEG parts nor a JPEG")
                }
            }
            if let boundary {
                return await readMultipart(&body, first: first, boundary: boundary, into: feedBox, pictures: pictures)
            }
            snapshotMode = true
            let asked = clock.now
            var jpeg = first ?? ByteBuffer()
            do {
                while var chunk = try await body.next() {
                    guard jpeg.readableBytes + chunk.readableBytes <= maxFrameBytes else {
                        return .lost("a picture is larger than \(maxFrameBytes) bytes (--max-message-bytes)")
                    }
                    jpeg.writeBuffer(&chunk)
                }
            } catch {
                return .lost("the picture broke off: \(Self.describe(error))")
            }
            if let ending = publish(jpeg, into: feedBox, pictures: pictures) { return ending }
            try? await clock.sleep(until: asked.addingTimeInterval(source.pollInterval.seconds))
        } while snapshotMode && !Task.isCancelled
        return .stopped
    }

    private func readMultipart(_ body: inout HTTPClientResponse.Body.AsyncIterator, first: ByteBuffer?, boundary: String,
                               into feedBox: NIOLockedValueBox<StreamFeed?>, pictures: PictureClock) async -> Ending {
        var reader = MultipartFrameReader(boundary: boundary, maxPartBytes: maxFrameBytes)
        do {
            var next = first
            if next == nil { next = try await body.next() }
            while let chunk = next {
                for event in reader.append(chunk) {
                    switch event {
                    case .part(let jpeg):
                        if let ending = publish(jpeg, into: feedBox, pictures: pictures) { return ending }
                    case .invalid(let reason):
                        return .lost("the camera's MJPEG cannot be read: \(reason)")
                    }
                }
                next = try await body.next()
            }
        } catch {
            return .lost(Task.isCancelled ? "stopped" : "the connection broke: \(Self.describe(error))")
        }
        return .lost("the camera ended its MJPEG response")
    }

    /// Opens the stream at the first picture, then runs each through the pipeline.
    private func publish(_ jpeg: ByteBuffer, into feedBox: NIOLockedValueBox<StreamFeed?>, pictures: PictureClock) -> Ending? {
        var feed = feedBox.withLockedValue { $0 }
        if feed == nil {
            let identity = AuditEvent.Identity(grant: nil, role: .streamer, client: source.url)
            do throws(StreamFeed.Refusal) {
                let opened = try StreamFeed.open(source.streamID, services: services, identity: identity, kind: "pulled", logger: logger)
                feedBox.withLockedValue { $0 = opened }
                feed = opened
                change { $0.pulling() }
                logger.notice("source pulled", metadata: ["attempt": "\(status.withLockedValue { $0.attempts })"])
            } catch .limit(let reason) {
                return .lost("the relay refused the stream: \(reason)")
            } catch {
                return .stopped
            }
        }
        guard let feed, feed.endReason == nil else { return nil }
        pictures.tick()
        let (_, result) = feed.submit(jpeg)
        change { $0.frames += 1; if !result.taken { $0.refused += 1 } }
        return nil
    }

    struct Unusable: Error { let reason: String }

    private func request() throws(Unusable) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: source.url)
        request.headers.add(name: "Accept", value: "multipart/x-mixed-replace, image/jpeg")
        request.headers.add(name: "User-Agent", value: "framepipe")
        if let credentials = source.credentials {
            switch credentials.read() {
            case .success(let secret): request.headers.add(name: "Authorization", value: "Basic " + Data(secret.utf8).base64EncodedString())
            case .failure(let unreadable): throw Unusable(reason: "credentials: \(unreadable.reason)")
            }
        }
        return request
    }

    /// An HTTP client error in words an operator can act on.
    static func describe(_ error: any Error) -> String {
        if let http = error as? HTTPClientError {
            switch http {
            case .deadlineExceeded: return "no answer in time"
            case .connectTimeout: return "connect timed out"
            case .remoteConnectionClosed: return "the camera closed the connection"
            default: return "\(http)"
            }
        }
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)).lowercased() }
        return "\(error)"
    }
}
