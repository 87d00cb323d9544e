import Foundation
import HummingbirdWSClient
import Logging
import Synchronization

/// Times what a dashboard asks of the relay while it fans out frames: a
/// viewer's `ping` answered with `pong`, and `GET /api/viewers`. These share
/// the relay with the fan-out (its locks, its event loops), so their delay is
/// what a nursing-station dashboard feels when the relay is busy. `GET
/// /healthz`, which reads two counts, is timed the same way between them: the
/// request's own path through the relay's threads, so that what
/// `/api/viewers` adds to it can be told apart.
///
/// The probing viewer watches no stream, so no frame of its own is queued
/// ahead of its pong. Run it in a process of its own (`load --viewers 0
/// --streams 0 --probe-ms …` beside the loading one): in the loading
/// process its pongs wait behind a thousand viewers' frames being read.
/// Keep pings under the relay's viewer message limit (20 a second by
/// default), or the excess is ignored and counted lost.
final class ControlProbe: Sendable {
    let host: String
    let port: Int
    let pingInterval: Duration
    let apiInterval: Duration
    let pongs = LatencyLog()
    let apiCalls = LatencyLog()
    let healthCalls = LatencyLog()
    private let stopped = Atomic(false)
    private let pingSentAt = Mutex<ContinuousClock.Instant?>(nil)
    /// Pings sent in the measured window and not answered within 2 s.
    let lostPings = Atomic(0)

    init(host: String, port: Int, pingInterval: Duration, apiInterval: Duration) {
        self.host = host
        self.port = port
        self.pingInterval = pingInterval
        self.apiInterval = apiInterval
    }

    func stop() { stopped.store(true, ordering: .relaxed) }

    func pingUntilCancelled(measureStart: MeasureStart, configuration: WebSocketClientConfiguration) async {
        let clock = ContinuousClock()
        let logger = Logger(label: "probe") { _ in SwiftLogNoOpLogHandler() }
        _ = try? await WebSocketClient.connect(url: "ws://\(host):\(port)/ws/viewer?format=json&streams=control-probe-watches-nothing",
                                               configuration: configuration, logger: logger) { inbound, outbound, _ in
            let pinger = Task {
                while !Task.isCancelled {
                    try await Task.sleep(for: self.pingInterval)
                    // One ping in flight: a late pong is timed whole, not overtaken by the next ping.
                    // One unanswered for 2 s is counted lost (the relay ignores a viewer's flood).
                    let now = clock.now
                    let send = self.pingSentAt.withLock { sent -> Bool in
                        if let last = sent, now - last < .seconds(2) { return false }
                        if sent != nil, measureStart.isMeasuring(at: sent!) { self.lostPings.add(1, ordering: .relaxed) }
                        sent = now
                        return true
                    }
                    guard send else { continue }
                    try await outbound.write(.text(#"{"type":"ping"}"#))
                }
            }
            defer { pinger.cancel() }
            for try await message in inbound.messages(maxSize: 1 << 20) {
                guard case .text(let text) = message else { continue }
                if text == #"{"type":"ping"}"# {
                    try await outbound.write(.text(#"{"type":"pong"}"#))
                } else if text.hasPrefix(#"{"type":"pong""#) {
                    let now = clock.now
                    if let sent = self.pingSentAt.withLock({ $0.take() }), measureStart.isMeasuring(at: sent) {
                        self.pongs.record(now - sent)
                    }
                }
            }
        }
    }

    /// Blocking HTTP/1.1 requests on a thread of its own (`Connection:
    /// close`, read to EOF), each timed from connect to the last byte: per
    /// interval one `/api/viewers` and, half an interval before it, one `/healthz`.
    func callAPIUntilStopped(measureStart: MeasureStart) {
        let clock = ContinuousClock()
        let calls = [("/healthz", healthCalls), ("/api/viewers", apiCalls)].map { path, log in
            (Array("GET \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n".utf8), log)
        }
        while !stopped.load(ordering: .relaxed) {
            for (request, log) in calls {
                Thread.sleep(forTimeInterval: apiInterval.seconds / 2)
                let start = clock.now
                guard Self.fetch(host: host, port: port, request: request) else { continue }
                if measureStart.isMeasuring(at: start) { log.record(clock.now - start) }
            }
        }
    }

    private static func fetch(host: String, port: Int, request: [UInt8]) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0, send(fd, request, request.count, 0) == request.count else { return false }
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        var first = true
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return n == 0 && !first }
            if first, !buffer[0..<min(n, 12)].elementsEqual("HTTP/1.1 200".utf8.prefix(min(n, 12))) { return false }
            first = false
        }
    }
}

/// Durations seen in the measured window, in milliseconds.
final class LatencyLog: Sendable {
    private let values = Mutex<[Double]>([])
    func record(_ duration: Duration) { values.withLock { $0.append(duration.seconds * 1000) } }
    var milliseconds: [Double] { values.withLock { $0 } }
}
