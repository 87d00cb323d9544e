import Access
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOPosix
import Pipeline
import RelayCore
import ServiceLifecycle

/// Posts `RelayEvent`s to the `--webhook` receivers, signed, in the
/// background: a camera that dies at 3 a.m. pages someone instead of only
/// turning a tile "stalled" that nobody is watching.
///
/// `relayEvent` only formats the body and queues it, so no frame ever
/// waits for a receiver. Each receiver has its own bounded queue and one
/// worker that delivers in order and retries with doubling, jittered
/// waits; a full queue drops the new event, and an event that failed every
/// attempt is given up. All three outcomes are counted in metrics.
final class EventWebhooks: RelayEventListener, Service, Sendable {
    private struct Receiver {
        let url: String
        let queue: AsyncStream<WebhookPayload>
        let continuation: AsyncStream<WebhookPayload>.Continuation
    }

    let settings: WebhookSettings
    let node: String
    let metrics: RelayMetrics
    let logger: Logger
    /// How long a shutdown waits for queued events (a shutdown's own `stream_ended` among them).
    let flushTimeout: Duration
    /// What retries wait on and requests are signed with: the relay's clock.
    let clock: any RelayClock
    private let receivers: [Receiver]

    init(settings: WebhookSettings, node: String, metrics: RelayMetrics, clock: any RelayClock, logger: Logger,
         flushTimeout: Duration = .seconds(3)) {
        self.flushTimeout = flushTimeout
        self.clock = clock
        self.settings = settings
        self.node = node
        self.metrics = metrics
        self.logger = logger
        receivers = settings.urls.map { url in
            let (queue, continuation) = AsyncStream.makeStream(of: WebhookPayload.self, bufferingPolicy: .bufferingOldest(settings.queueDepth))
            return Receiver(url: url, queue: queue, continuation: continuation)
        }
    }

    func relayEvent(_ event: RelayEvent) {
        let payload = WebhookPayload(event, node: node)
        for receiver in receivers {
            if case .dropped = receiver.continuation.yield(payload) {
                metrics.webhook("dropped")
                logger.error("webhook queue full; event dropped", metadata: [
                    "url": "\(receiver.url)", "event": "\(payload.type)", "event_id": "\(payload.id)", "queue_depth": "\(settings.queueDepth)"])
            }
        }
    }

    func run() async throws {
        let (flushTimeout, receivers) = (flushTimeout, receivers)
        // Its own client, made here and shut down when the service stops: a refused
        // receiver fails each attempt at once and the retries below wait their
        // backoff, where a shared client retries the connection quietly until the timeout.
        let client = HTTPClient.failingFast()
        let workers = Task {
            await withDiscardingTaskGroup { group in
                for receiver in receivers { group.addTask { await self.deliver(from: receiver, client: client) } }
            }
        }
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await workers.value
            } onGracefulShutdown: {
                // A finished queue still yields what it holds; after the flush timeout the rest is abandoned.
                for receiver in receivers { receiver.continuation.finish() }
                Task {
                    try? await Task.sleep(for: flushTimeout)
                    workers.cancel()
                }
            }
        } onCancel: {
            workers.cancel()
        }
        await workers.value
        try? await client.shutdown()
    }

    private func deliver(from receiver: Receiver, client: HTTPClient) async {
        for await payload in receiver.queue {
            await post(payload, to: receiver.url, client: client)
        }
    }

    /// One event to one receiver, with its retries.
    private func post(_ payload: WebhookPayload, to url: String, client: HTTPClient) async {
        var attempt = 1
        while true {
            let failure: String
            do {
                let status = try await send(payload, to: url, client: client)
                if (200..<300).contains(status) {
                    metrics.webhook("sent")
                    if attempt > 1 {
                        logger.notice("webhook delivered after retries", metadata: [
                            "url": "\(url)", "event": "\(payload.type)", "event_id": "\(payload.id)", "attempts": "\(attempt)"])
                    }
                    return
                }
                failure = "answered \(status)"
                // A refusal that another try cannot change (a bad URL, a signature it does not accept).
                if (400..<500).contains(status), status != 408, status != 429 {
                    metrics.webhook("failed")
                    giveUp(payload, url: url, attempts: attempt, reason: failure)
                    return
                }
            } catch {
                failure = "\(error)"
            }
            metrics.webhook("failed")
            guard attempt < settings.maxAttempts, !Task.isCancelled else {
                giveUp(payload, url: url, attempts: attempt, reason: failure)
                return
            }
            // Jittered, so a receiver that comes back is not hit by every relay at once.
            let delay = settings.backoff.delay(attempt: attempt)
            if attempt == 1 {
                logger.warning("webhook failed; retrying", metadata: [
                    "url": "\(url)", "event": "\(payload.type)", "event_id": "\(payload.id)", "reason": "\(failure)",
                    "retry_in_ms": "\(delay.milliseconds)"])
            }
            try? await clock.sleep(for: delay)
            attempt += 1
        }
    }

    private func giveUp(_ payload: WebhookPayload, url: String, attempts: Int, reason: String) {
        metrics.webhook("dropped")
        logger.error("webhook given up; event lost", metadata: [
            "url": "\(url)", "event": "\(payload.type)", "event_id": "\(payload.id)", "attempts": "\(attempts)", "reason": "\(reason)"])
    }

    /// Signed at each attempt, so the timestamp a receiver checks is fresh.
    private func send(_ payload: WebhookPayload, to url: String, client: HTTPClient) async throws -> UInt {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "framepipe-webhook")
        request.headers.add(name: "X-Framepipe-Event", value: payload.type)
        request.headers.add(name: "X-Framepipe-Delivery", value: payload.id)
        let timestamp = Int(clock.now.timeIntervalSince1970)
        request.headers.add(name: WebhookSignature.header, value: WebhookSignature.sign(body: payload.body, timestamp: timestamp, secret: settings.secret))
        request.body = .bytes(ByteBuffer(string: payload.body))
        let response = try await client.execute(request, timeout: .milliseconds(settings.timeout.milliseconds))
        // Read (and discard) the answer, so the connection can be reused.
        _ = try? await response.body.collect(upTo: 64 << 10)
        return response.status.code
    }
}
