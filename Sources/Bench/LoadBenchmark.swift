import ArgumentParser
import Foundation
import HummingbirdWSClient
import Logging
import NIOCore
import Pipeline
import Synchronization
import TestFixtures

/// `framepipe-bench load`: drives a running relay with real WebSocket
/// streamers and viewers (normal, stuck and slow) and reports delivered fps,
/// added latency, losses, and the server's CPU and memory.
struct LoadBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load a running framepipe server and report delivery, latency, CPU and memory.")

    @Option(help: "Server base URL.") var url = "ws://127.0.0.1:8080"
    @Option(help: "Server PID, to read its CPU and memory from /proc.") var pid: Int32?
    @Option(help: "Where viewers connect, if not to --url: another node of a cluster, for cross-node delivery.") var viewerUrl: String?
    @Option(help: "PID of the --viewer-url node, to read its CPU.") var viewerPid: Int32?
    @Option(help: "Streamers.") var streams = 1
    @Option(help: "Frames per second per streamer.") var fps = 30.0
    @Option(help: "Approximate JPEG size in bytes.") var frameBytes = 60_000
    @Option(help: "Frame width.") var width = 640
    @Option(help: "Frame height (default: 4:3 to the width).") var height: Int?
    @Option(help: "How streamers send: binary or json over WebSocket (json carries the sender's timestamp, for `watch` to age frames by), or mpjpeg (an HTTP multipart POST, as ffmpeg -f mpjpeg).") var ingest = "binary"
    @Option(help: "Normal viewers.") var viewers = 1
    @Option(help: "Viewers that connect and never read.") var stuck = 0
    @Option(help: "Viewers that read one message a second.") var slow = 0
    @Option(help: "Streams each viewer watches (0 = all).") var streamsPerViewer = 0
    @Option(help: "A viewer token (JWT) every viewer sends as ?token=, for a relay with auth on.") var viewerToken: String?
    @Option(help: "Viewer format: json, binary, or mjpeg (HTTP clients of /api/streams/{id}/mjpeg, one stream each).") var format = "json"
    @Option(help: "Seconds measured, after the warm-up.") var duration = 10.0
    @Option(help: "Seconds of warm-up before measuring.") var warmup = 3.0
    @Option(help: "Print server RSS every this many seconds (0 = never).") var sampleEvery = 0.0
    @Option(help: "A label for the JSON line.") var label = ""
    @Option(help: "Time a dashboard's control path during the load: a viewer watching nothing pings every this many ms and times the pong, and GET /api/viewers is timed every 5 pings, GET /healthz half-way between (0 = no probe).") var probeMs = 0.0

    func run() async throws {
        let probe = pid.map(ProcessProbe.init)
        let viewerNode = viewerPid.map(ProcessProbe.init)
        let own = ProcessProbe(pid: getpid())
        let frames = (0..<8).map { TestPattern.jpeg(width: width, height: height ?? width * 3 / 4, targetBytes: frameBytes, frame: $0) }
        let texts = frames.map { #","frame":"\#(TestPattern.dataURL($0))"}"# }
        let streamIDs = (0..<streams).map { "load-\($0)" }
        let logs = Dictionary(uniqueKeysWithValues: streamIDs.map { ($0, SendLog()) })
        let clock = ContinuousClock()
        let measureStart = MeasureStart()
        let logger = Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }
        let wsConfig = {
            var c = WebSocketClientConfiguration()
            c.maxFrameSize = 16 << 20
            c.autoPing = .disabled  // pings are answered at the JSON level, as a dashboard does
            return c
        }()

        let baseline = probe?.sample()
        let normalStats = (0..<viewers).map { _ in ClientStatistics() }
        let slowStats = (0..<slow).map { _ in ClientStatistics() }
        let stuckStats = (0..<stuck).map { _ in ClientStatistics() }
        let total = Duration.seconds(warmup + duration)
        let base = URLComponents(string: url.replacingOccurrences(of: "ws://", with: "http://"))
        let controlProbe = probeMs > 0
            ? ControlProbe(host: base?.host ?? "127.0.0.1", port: base?.port ?? 8080,
                           pingInterval: .milliseconds(probeMs), apiInterval: .milliseconds(probeMs * 5)) : nil
        defer { controlProbe?.stop() }

        try await withThrowingTaskGroup(of: Void.self) { group in
            // Viewers first, so they see every stream start.
            func addViewer(_ index: Int, stats: ClientStatistics, kind: String) {
                var query = "format=\(format)"
                if streamsPerViewer > 0 {
                    let watched = (0..<min(streamsPerViewer, streams)).map { streamIDs[(index + $0) % streams] }
                    query += "&streams=" + watched.joined(separator: ",")
                }
                if let viewerToken { query += "&token=" + viewerToken }
                let target = "\(viewerUrl ?? url)/ws/viewer?\(query)"
                if format == "mjpeg" {
                    // An MJPEG client watches one stream.
                    let stream = streamIDs[index % streams]
                    let base = URLComponents(string: (viewerUrl ?? url).replacingOccurrences(of: "ws://", with: "http://"))
                    group.addTask {
                        try? await MJPEGViewer.watch(host: base?.host ?? "127.0.0.1", port: base?.port ?? 8080, stream: stream, stats: stats) {
                            measureStart.isMeasuring(at: clock.now)
                        }
                        stats.markClosed()
                    }
                    return
                }
                group.addTask {
                    do {
                        try await WebSocketClient.connect(url: target, configuration: wsConfig, logger: logger) { inbound, outbound, _ in
                            if kind == "stuck" {
                                try? await Task.sleep(for: total + .seconds(5))
                                return
                            }
                            for try await message in inbound.messages(maxSize: 16 << 20) {
                                let now = clock.now
                                let measuring = measureStart.isMeasuring(at: now)
                                switch ViewerMessage.parse(message) {
                                case .frame(let stream, let seq):
                                    let sent = logs[stream]?.sentAt(seq: seq)
                                    stats.frame(stream: stream, seq: seq, latencyMs: sent.map { (now - $0).seconds * 1000 }, measuring: measuring)
                                case .ping:
                                    try await outbound.write(.text(#"{"type":"pong"}"#))
                                case .other:
                                    break
                                }
                                if kind == "slow" { try await Task.sleep(for: .seconds(1)) }
                            }
                        }
                    } catch is CancellationError {
                    } catch {}
                    stats.markClosed()
                }
            }
            for i in 0..<viewers { addViewer(i, stats: normalStats[i], kind: "normal") }
            for i in 0..<slow { addViewer(i, stats: slowStats[i], kind: "slow") }
            for i in 0..<stuck { addViewer(i, stats: stuckStats[i], kind: "stuck") }
            if let controlProbe {
                group.addTask { await controlProbe.pingUntilCancelled(measureStart: measureStart, configuration: wsConfig) }
                Thread.detachNewThread { controlProbe.callAPIUntilStopped(measureStart: measureStart) }
            }
            try await Task.sleep(for: .milliseconds(500 + 2 * (viewers + slow + stuck)))
            let idle = probe?.sample()
            if let baseline, let idle {
                Output.line("connected \(viewers + slow + stuck) viewers: server RSS \(baseline.rssKB) KB -> \(idle.rssKB) KB")
            }

            for (s, id) in streamIDs.enumerated() {
                let log = logs[id]!
                let ingest = self.ingest
                let fps = self.fps
                if ingest == "mpjpeg" {
                    let base = URLComponents(string: url.replacingOccurrences(of: "ws://", with: "http://"))
                    let host = base?.host ?? "127.0.0.1", port = base?.port ?? 8080
                    let fps = self.fps
                    group.addTask {
                        let channel = try await MJPEGFeeder.connect(host: host, port: port, stream: id)
                        try await channel.executeThenClose { _, outbound in
                            try await outbound.write(MJPEGFeeder.head(host: host, stream: id))
                            let start = clock.now
                            var n = 0
                            while clock.now - start < total {
                                log.record(clock.now)
                                try await outbound.write(MJPEGFeeder.part(frames[(n + s) % frames.count]))
                                n += 1
                                try await clock.sleep(until: start + .seconds(Double(n) / fps))
                            }
                            try await outbound.write(ByteBuffer(string: "0\r\n\r\n"))
                        }
                    }
                    continue
                }
                group.addTask {
                    try await WebSocketClient.connect(url: "\(url)/ws/stream/\(id)", configuration: wsConfig, logger: logger) { _, outbound, _ in
                        let start = clock.now
                        var n = 0
                        while clock.now - start < total {
                            log.record(clock.now)
                            if ingest == "json" {
                                let now = Int64((Date().timeIntervalSince1970 * 1000).rounded())
                                try await outbound.write(.text(#"{"type":"frame","timestamp":\#(now)"# + texts[(n + s) % texts.count]))
                            } else {
                                try await outbound.write(.binary(frames[(n + s) % frames.count]))
                            }
                            n += 1
                            try await clock.sleep(until: start + .seconds(Double(n) / fps))
                        }
                    }
                }
            }
            // Warm-up, then the measured window, sampling the server as it goes.
            try await Task.sleep(for: .seconds(warmup))
            let windowStart = clock.now
            measureStart.begin(at: windowStart)
            let serverStart = probe?.sample(), ownStart = own.sample(), viewerNodeStart = viewerNode?.sample()
            let sentStart = logs.values.map(\.count).reduce(0, +)
            var peakRSS = serverStart?.rssKB ?? 0
            while clock.now - windowStart < .seconds(duration) {
                try await Task.sleep(for: .seconds(sampleEvery > 0 ? min(sampleEvery, 1) : 1))
                if let s = probe?.sample() { peakRSS = max(peakRSS, s.rssKB) }
                if sampleEvery > 0, let s = probe?.sample(),
                   Int((clock.now - windowStart).seconds) % Int(max(1, sampleEvery)) == 0 {
                    Output.line(String(format: "t=%5.0fs server RSS %d KB", (clock.now - windowStart).seconds, s.rssKB))
                }
            }
            let serverEnd = probe?.sample(), ownEnd = own.sample(), viewerNodeEnd = viewerNode?.sample()
            let sentInWindow = logs.values.map(\.count).reduce(0, +) - sentStart
            group.cancelAll()
            controlProbe?.stop()
            report(normal: normalStats, slow: slowStats, stuck: stuckStats, probe: controlProbe, sentInWindow: sentInWindow,
                   window: (clock.now - windowStart).seconds, server: (serverStart, serverEnd, peakRSS, baseline, idle),
                   own: (ownStart, ownEnd), viewerNode: (viewerNodeStart, viewerNodeEnd))
        }
    }

    func report(normal: [ClientStatistics], slow: [ClientStatistics], stuck: [ClientStatistics], probe: ControlProbe?, sentInWindow: Int, window: Double,
                server: (ProcessProbe.Sample?, ProcessProbe.Sample?, Int, ProcessProbe.Sample?, ProcessProbe.Sample?),
                own: (ProcessProbe.Sample?, ProcessProbe.Sample?), viewerNode: (ProcessProbe.Sample?, ProcessProbe.Sample?)) {
        let snaps = normal.map(\.snapshot)
        let watched = Double(streamsPerViewer > 0 ? min(streamsPerViewer, streams) : streams)
        let fpsPerViewer = snaps.map { Double($0.inWindow) / window / watched }
        let expected = Double(sentInWindow) / Double(streams) * watched
        let ratios = snaps.map { expected > 0 ? Double($0.inWindow) / expected : 0 }
        let latencies = snaps.flatMap(\.latencies)
        let delivered = snaps.map(\.inWindow).reduce(0, +)
        let serverCPU = server.0.flatMap { a in server.1.map { ProcessProbe.cpuPercent(from: a, to: $0) } }
        let cpuPerFrameUs = server.0.flatMap { a in server.1.map { b in delivered > 0 ? (b.cpuSeconds - a.cpuSeconds) / Double(delivered) * 1e6 : .nan } }
        let ownCPU = own.0.flatMap { a in own.1.map { ProcessProbe.cpuPercent(from: a, to: $0) } }
        let viewerNodeCPU = viewerNode.0.flatMap { a in viewerNode.1.map { ProcessProbe.cpuPercent(from: a, to: $0) } }
        let perViewerKB = server.3.flatMap { b in server.4.map { i in Double(i.rssKB - b.rssKB) / Double(max(1, normal.count + slow.count + stuck.count)) } }
        let slowFrames = slow.map { $0.snapshot.frames }
        let stuckClosed = stuck.filter { $0.snapshot.closed }.count
        let outOfOrder = snaps.map(\.outOfOrder).reduce(0, +)

        func f(_ v: Double?, _ digits: Int = 1) -> String { v.map { $0.isNaN ? "-" : String(format: "%.\(digits)f", $0) } ?? "-" }
        Output.line("scenario: \(streams) stream(s) x \(f(fps, 0)) fps x \(frameBytes / 1000) KB (\(ingest) in), \(normal.count) \(format) viewers"
                    + (streamsPerViewer > 0 ? " watching \(streamsPerViewer) each" : "") + ", \(stuck.count) stuck, \(slow.count) slow; \(f(window, 1)) s measured")
        Output.line("  delivered fps per viewer  median \(f(Percentile.of(fpsPerViewer, 0.5)))  min \(f(fpsPerViewer.min()))")
        Output.line("  delivery ratio            median \(f(Percentile.of(ratios, 0.5), 3))  min \(f(ratios.min(), 3))  out-of-order \(outOfOrder)")
        Output.line("  added latency ms          p50 \(f(Percentile.of(latencies, 0.5), 2))  p99 \(f(Percentile.of(latencies, 0.99), 2))  max \(f(latencies.max(), 2))")
        Output.line("  slow viewers' frames      \(slowFrames.isEmpty ? "-" : slowFrames.map(String.init).joined(separator: " "))   stuck viewers closed \(stuckClosed)/\(stuck.count)")
        Output.line("  server CPU                \(f(serverCPU))% of a core, \(f(cpuPerFrameUs, 2)) µs per delivered frame; RSS \(server.1?.rssKB ?? 0) KB (peak \(server.2) KB), \(f(perViewerKB)) KB per connected viewer")
        if viewerUrl != nil { Output.line("  viewers' node CPU         \(f(viewerNodeCPU))% of a core (viewers on \(viewerUrl!))") }
        Output.line("  load tool CPU             \(f(ownCPU))% of a core")
        let pongs = probe?.pongs.milliseconds ?? [], apiCalls = probe?.apiCalls.milliseconds ?? []
        let healthCalls = probe?.healthCalls.milliseconds ?? []
        if probe != nil {
            Output.line("  ping to pong ms           p50 \(f(Percentile.of(pongs, 0.5), 2))  p99 \(f(Percentile.of(pongs, 0.99), 2))  max \(f(pongs.max(), 2))  (\(pongs.count) pings, \(probe!.lostPings.load(ordering: .relaxed)) lost)")
            Output.line("  GET /api/viewers ms       p50 \(f(Percentile.of(apiCalls, 0.5), 2))  p99 \(f(Percentile.of(apiCalls, 0.99), 2))  max \(f(apiCalls.max(), 2))  (\(apiCalls.count) calls)")
            Output.line("  GET /healthz ms           p50 \(f(Percentile.of(healthCalls, 0.5), 2))  p99 \(f(Percentile.of(healthCalls, 0.99), 2))  max \(f(healthCalls.max(), 2))  (\(healthCalls.count) calls)")
        }
        let json: [(String, String)] = [
            ("label", "\"\(label)\""), ("streams", "\(streams)"), ("fps", f(fps, 0)), ("frame_bytes", "\(frameBytes)"), ("ingest", "\"\(ingest)\""),
            ("viewers", "\(normal.count)"), ("format", "\"\(format)\""), ("stuck", "\(stuck.count)"), ("slow", "\(slow.count)"),
            ("fps_median", f(Percentile.of(fpsPerViewer, 0.5), 2)), ("fps_min", f(fpsPerViewer.min(), 2)),
            ("ratio_median", f(Percentile.of(ratios, 0.5), 4)), ("ratio_min", f(ratios.min(), 4)),
            ("latency_p50_ms", f(Percentile.of(latencies, 0.5), 2)), ("latency_p99_ms", f(Percentile.of(latencies, 0.99), 2)),
            ("latency_max_ms", f(latencies.max(), 2)), ("stuck_closed", "\(stuckClosed)"),
            ("server_cpu_pct", f(serverCPU)), ("server_cpu_us_per_frame", f(cpuPerFrameUs, 2)),
            ("server_rss_kb", "\(server.1?.rssKB ?? 0)"), ("server_peak_rss_kb", "\(server.2)"), ("kb_per_viewer", f(perViewerKB)),
            ("tool_cpu_pct", f(ownCPU)), ("viewer_node_cpu_pct", f(viewerNodeCPU)), ("cross_node", viewerUrl == nil ? "false" : "true"),
        ] + (probe == nil ? [] : [
            ("pong_p50_ms", f(Percentile.of(pongs, 0.5), 2)), ("pong_p99_ms", f(Percentile.of(pongs, 0.99), 2)), ("pong_max_ms", f(pongs.max(), 2)),
            ("pongs", "\(pongs.count)"), ("pings_lost", "\(probe!.lostPings.load(ordering: .relaxed))"), ("api_viewers_p50_ms", f(Percentile.of(apiCalls, 0.5), 2)),
            ("api_viewers_p99_ms", f(Percentile.of(apiCalls, 0.99), 2)), ("api_viewers_max_ms", f(apiCalls.max(), 2)), ("api_calls", "\(apiCalls.count)"),
            ("api_healthz_p50_ms", f(Percentile.of(healthCalls, 0.5), 2)), ("api_healthz_p99_ms", f(Percentile.of(healthCalls, 0.99), 2)),
            ("api_healthz_max_ms", f(healthCalls.max(), 2)), ("api_healthz_calls", "\(healthCalls.count)"),
        ])
        Output.line("{" + json.map { "\"\($0.0)\":\($0.1 == "-" ? "null" : $0.1)" }.joined(separator: ",") + "}")
    }
}

/// Just enough parsing of what a viewer receives to time and count frames.
enum ViewerMessage {
    case frame(stream: String, seq: UInt64)
    case ping
    case other

    static func parse(_ message: WebSocketMessage) -> ViewerMessage {
        switch message {
        case .binary(var bytes):
            guard let n = bytes.readInteger(endianness: .big, as: UInt16.self), let header = bytes.readString(length: Int(n)) else { return .other }
            return frame(from: header)
        case .text(let text):
            guard text.hasPrefix(#"{"type":"frame","#) else {
                return text == #"{"type":"ping"}"# ? .ping : .other
            }
            // The header fields come before the (large) frame field.
            guard let cut = text.utf8.firstRange(of: #","frame":"#.utf8) else { return .other }
            return frame(from: String(text[..<cut.lowerBound]) + "}")
        }
    }

    static func frame(from header: String) -> ViewerMessage {
        guard let json = try? JSONParser.parse(header), let stream = json["stream_id"]?.stringValue,
              let seq = json["seq"]?.numberValue else { return .other }
        return .frame(stream: stream, seq: UInt64(seq))
    }
}
