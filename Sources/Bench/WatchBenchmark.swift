import ArgumentParser
import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import Pipeline
import Synchronization

/// `framepipe-bench watch`: one viewer, for running where `load` cannot,
/// such as inside a network namespace behind a shaped link. It reports
/// what that viewer got: frames per second, the age of each frame when it
/// was read (now − the streamer's `timestamp`; both on this machine's wall
/// clock, so old and new relays are measured alike), the part of that age
/// after the relay received it (now − `received_at`: what the relay and the
/// link to this viewer added, without any backlog before the relay read the
/// frame), and whether and when the relay closed it.
struct WatchBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Watch a relay as one viewer and report fps, frame age and disconnection.")

    @Option(help: "Server base URL.") var url = "ws://127.0.0.1:8080"
    @Option(help: "Extra query for /ws/viewer (besides format=binary).") var query = ""
    @Option(help: "Seconds to watch.") var duration = 20.0
    @Option(help: "Seconds ignored at the start (the link and the relay settle).") var warmup = 3.0
    @Option(help: "Messages read per second (0 = as fast as they come): a slow device.") var readRate = 0.0
    @Flag(help: "Acknowledge each frame read ({\"type\":\"ack\"}), for ?flow=credit.") var ack = false
    @Option(help: "A label for the JSON line.") var label = ""

    func run() async throws {
        let logger = Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }
        var configuration = WebSocketClientConfiguration()
        configuration.maxFrameSize = 16 << 20
        configuration.autoPing = .disabled
        let seen = Mutex<(ages: [Double], relayAges: [Double], frames: Int, bytes: Int, closedAfter: Double?, closeReason: String?)>(([], [], 0, 0, nil, nil))
        let start = ContinuousClock.now
        let target = "\(url)/ws/viewer?format=binary" + (query.isEmpty ? "" : "&" + query)
        let readRate = readRate, ack = ack, warmup = warmup
        let watching = Task {
            do {
                try await WebSocketClient.connect(url: target, configuration: configuration, logger: logger) { inbound, outbound, _ in
                    for try await message in inbound.messages(maxSize: 16 << 20) {
                        let elapsed = (ContinuousClock.now - start).seconds
                        switch message {
                        case .binary(var bytes):
                            let size = bytes.readableBytes
                            guard let n = bytes.readInteger(endianness: .big, as: UInt16.self), let text = bytes.readString(length: Int(n)),
                                  let header = try? JSONParser.parse(text) else { break }
                            let now = Date().timeIntervalSince1970 * 1000
                            if elapsed >= warmup {
                                seen.withLock { s in
                                    s.frames += 1
                                    s.bytes += size
                                    if let sent = header["timestamp"]?.numberValue { s.ages.append(now - sent) }
                                    if let received = header["received_at"]?.numberValue { s.relayAges.append(now - received) }
                                }
                            }
                            if ack, let stream = header["stream_id"]?.stringValue, let seq = header["seq"]?.numberValue {
                                try await outbound.write(.text(#"{"type":"ack","stream_id":"\#(stream)","seq":\#(Int(seq))}"#))
                            }
                        case .text(let text):
                            if text.hasPrefix(#"{"type":"ping""#) { try await outbound.write(.text(#"{"type":"pong"}"#)) }
                        }
                        if readRate > 0 { try await Task.sleep(for: .seconds(1 / readRate)) }
                    }
                }
                let after = (ContinuousClock.now - start).seconds
                seen.withLock { if after < duration { $0.closedAfter = after; $0.closeReason = "closed by the relay" } }
            } catch is CancellationError {
            } catch {
                let after = (ContinuousClock.now - start).seconds
                seen.withLock { $0.closedAfter = after; $0.closeReason = "\(error)" }
            }
        }
        try await Task.sleep(for: .seconds(duration))
        watching.cancel()
        let result = seen.withLock { $0 }
        let window = duration - warmup
        func f(_ v: Double?, _ digits: Int = 0) -> String { v.map { $0.isNaN ? "-" : String(format: "%.\(digits)f", $0) } ?? "-" }
        let connected = result.closedAfter == nil
        Output.line("viewer \(label): \(connected ? "connected throughout" : "closed after \(f(result.closedAfter, 1)) s (\(result.closeReason ?? ""))"); "
                    + "\(f(Double(result.frames) / window, 1)) fps, \(f(Double(result.bytes) / window / 1000, 0)) KB/s; "
                    + "frame age ms p50 \(f(Percentile.of(result.ages, 0.5))) p95 \(f(Percentile.of(result.ages, 0.95))) max \(f(result.ages.max())); "
                    + "since the relay received it p50 \(f(Percentile.of(result.relayAges, 0.5))) p95 \(f(Percentile.of(result.relayAges, 0.95)))")
        let json: [(String, String)] = [
            ("label", "\"\(label)\""), ("connected", "\(connected)"), ("closed_after_s", f(result.closedAfter, 1)),
            ("fps", f(Double(result.frames) / window, 2)), ("kbytes_per_s", f(Double(result.bytes) / window / 1000, 1)),
            ("age_p50_ms", f(Percentile.of(result.ages, 0.5))), ("age_p95_ms", f(Percentile.of(result.ages, 0.95))),
            ("age_max_ms", f(result.ages.max())),
            ("relay_age_p50_ms", f(Percentile.of(result.relayAges, 0.5))), ("relay_age_p95_ms", f(Percentile.of(result.relayAges, 0.95))),
        ]
        Output.line("{" + json.map { "\"\($0.0)\":\($0.1 == "-" ? "null" : $0.1)" }.joined(separator: ",") + "}")
    }
}
