import ArgumentParser
import Foundation
import TestFixtures
import Logging
import NIOCore
import Pipeline
import Stages

/// `framepipe-bench pipeline`: the per-frame cost of every built-in stage on
/// real JPEGs of the sizes cameras send (640x480 ≈ 60 KB, 1280x720 ≈ 150 KB
/// for a detailed scene, ≈ 80 KB for a quieter one). Consecutive frames are
/// different pictures, as a live camera's are, so no stage can skip work on
/// a repeat unless the row says so.
struct PipelineBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Per-frame cost of each built-in stage on 640x480/60 KB, 1280x720/150 KB and 1280x720/80 KB JPEGs.")

    @Option(help: "Frames timed per measurement.")
    var iterations = 400

    @Option(help: "Repeat each measurement this many times and report the median.")
    var rounds = 5

    @Option(help: "Measure only the stages whose row starts with this (for profiling one stage).")
    var only: String?

    struct Case {
        let name: String
        let params: [String: JSONValue]
        let text: Bool
        let stage: any Stage.Type
        /// Every frame the same bytes (a hung encoder), instead of a new picture each time.
        var repeated = false
        /// Time between frames' arrivals.
        var frameGap: Duration = .milliseconds(1)
    }

    func run() throws {
        let sizes: [(String, Int, Int, Int)] = [("640x480", 640, 480, 60_000), ("1280x720", 1280, 720, 150_000), ("1280x720 quieter", 1280, 720, 80_000)]
        let cases: [Case] = [
            Case(name: "size-limit", params: [:], text: true, stage: SizeLimitStage.self),
            Case(name: "rate-limit", params: ["maxFps": .number(1000), "burst": .number(1000)], text: false, stage: RateLimitStage.self),
            Case(name: "base64-validation (data URL)", params: [:], text: true, stage: Base64ValidationStage.self),
            Case(name: "decode-check header", params: [:], text: false, stage: DecodeCheckStage.self),
            Case(name: "decode-check full", params: ["mode": .string("full")], text: false, stage: DecodeCheckStage.self),
            Case(name: "error-counter", params: [:], text: false, stage: ErrorCounterStage.self),
            Case(name: "downscale 1/2 q60", params: ["when": .string("always")], text: false, stage: DownscaleStage.self),
            Case(name: "downscale 1/4 q50", params: ["when": .string("always"), "scale": .string("1/4"), "quality": .number(50)], text: false, stage: DownscaleStage.self),
            // Per checked frame (every frame looked at), and per frame on average at the default sampling.
            Case(name: "picture-health, per checked frame", params: ["interval": .number(0)], text: false, stage: PictureHealthStage.self),
            Case(name: "picture-health, defaults, 30 fps", params: [:], text: false, stage: PictureHealthStage.self,
                 frameGap: .microseconds(33_333)),
            Case(name: "picture-health, repeated bytes, per check", params: ["interval": .number(0)], text: false, stage: PictureHealthStage.self,
                 repeated: true),
            Case(name: "fan-out", params: [:], text: false, stage: FanOutStage.self),
        ]
        var results: [(size: String, name: String, micros: Double)] = []
        var header = "stage".padding(toLength: 42, withPad: " ", startingAt: 0)
        for (label, _, _, _) in sizes { header += label.leftPadded(22) }
        var rows: [String: [String]] = [:]
        for (label, width, height, target) in sizes {
            // Three pictures of the same scene a moment apart, taken in turn: with two, a stage
            // sampling every 16th frame (2 looks/s at 30 fps) would see the same one each time.
            let jpegs = (0..<3).map { TestPattern.jpeg(width: width, height: height, targetBytes: target, frame: $0) }
            let jpeg = jpegs[0]
            let urls = jpegs.map { FramePayload.dataURL(TestPattern.dataURL($0)) }
            for c in cases where only.map(c.name.hasPrefix) ?? true {
                let payloads = c.text ? urls : jpegs.map { FramePayload.binary($0) }
                // A repeat arrives in a buffer of its own: two copies of one picture's bytes, in turn.
                let repeats = [FramePayload.binary(jpeg), .binary(ByteBuffer(bytes: Array(buffer: jpeg)))]
                let micros = measure(c.stage, params: c.params, payloads: c.repeated ? repeats : payloads, gap: c.frameGap)
                results.append((label, c.name, micros))
                rows[c.name, default: []].append(String(format: "%.1f µs", micros))
            }
            let combined = measureChain(payloads: urls)
            results.append((label, "base64-validation + decode-check header", combined))
            rows["base64-validation + decode-check header", default: []].append(String(format: "%.1f µs", combined))
            let standard = measureStandard(payloads: urls)
            results.append((label, "standard pipeline, no slow viewer", standard))
            rows["standard pipeline, no slow viewer", default: []].append(String(format: "%.1f µs", standard))
            rows["(frame size)", default: []].append("\(jpeg.readableBytes) B")
            rows["(low rendition 1/2 q60 size)", default: []].append("\(lowRenditionBytes(jpeg)) B")
        }
        Output.line(header)
        for name in ["(frame size)", "(low rendition 1/2 q60 size)"] + cases.map(\.name) + ["base64-validation + decode-check header", "standard pipeline, no slow viewer"]
        where rows[name] != nil {
            Output.line(name.padding(toLength: 42, withPad: " ", startingAt: 0) + rows[name, default: []].map { $0.leftPadded(22) }.joined())
        }
        let json = results.map { "{\"size\":\"\($0.size)\",\"stage\":\"\($0.name)\",\"us_per_frame\":\(String(format: "%.2f", $0.micros))}" }
        Output.line("{\"benchmark\":\"pipeline\",\"iterations\":\(iterations),\"results\":[\(json.joined(separator: ","))]}")
    }

    /// Median over rounds of the mean µs per frame of one stage instance.
    func measure(_ type: any Stage.Type, params: [String: JSONValue], payloads: [FramePayload], gap: Duration) -> Double {
        func run<S: Stage>(_ type: S.Type) -> Double {
            var stage = S(configuration: S.configuration(from: StageParameters(params)), context: Self.context)
            return median { seq in
                // Arrivals 1 ms apart unless the case says otherwise, so rate-limit (at 1000 fps) passes every frame.
                var frame = Frame(streamID: "bench", seq: seq, arrival: Self.epoch + gap * Int(seq),
                                  payload: payloads[Int(seq % UInt64(payloads.count))])
                return stage.process(&frame)
            }
        }
        return run(type)
    }

    /// What `downscale` at its defaults makes of `jpeg`: the bytes a cluster
    /// would also publish per frame if nodes sent the `low` rendition too.
    func lowRenditionBytes(_ jpeg: ByteBuffer) -> Int {
        var stage = DownscaleStage(configuration: DownscaleStage.configuration(from: StageParameters(["when": .string("always")])), context: Self.context)
        var frame = Frame(streamID: "bench", seq: 0, payload: .binary(jpeg))
        _ = stage.process(&frame)
        return frame.lowRendition?.jpeg.readableBytes ?? 0
    }

    func measureChain(payloads: [FramePayload]) -> Double {
        var base64 = Base64ValidationStage(configuration: Base64ValidationStage.configuration(from: .init()), context: Self.context)
        var check = DecodeCheckStage(configuration: DecodeCheckStage.configuration(from: .init()), context: Self.context)
        return median { seq in
            var frame = Frame(streamID: "bench", seq: seq, payload: payloads[Int(seq % UInt64(payloads.count))])
            _ = base64.process(&frame)
            return check.process(&frame)
        }
    }

    /// The shipped `pipelines.json`'s standard pipeline, as `framepipe serve` runs it by default, at 30 fps.
    func measureStandard(payloads: [FramePayload]) -> Double {
        let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../pipelines.json")
        let config = try! PipelineConfigLoader(registry: .builtIn).load(text: String(contentsOf: shipped, encoding: .utf8))
        var runner = config.pipelines.first { $0.name == "standard" }!.makeRunner(context: Self.context)
        return median { seq in
            let frame = Frame(streamID: "bench", seq: seq, arrival: Self.epoch + .microseconds(33_333) * Int(seq),
                              payload: payloads[Int(seq % UInt64(payloads.count))])
            return runner.run(frame) == .delivered ? .pass : .drop(reason: "")
        }
    }

    func median(_ body: (UInt64) -> StageOutcome) -> Double {
        var seq: UInt64 = 0
        for _ in 0..<max(10, iterations / 10) { _ = body(seq); seq += 1 }  // warm up
        var means: [Double] = []
        for _ in 0..<rounds {
            var passed = 0
            let start = ContinuousClock.now
            for _ in 0..<iterations {
                if body(seq) == .pass { passed += 1 }
                seq += 1
            }
            let elapsed = ContinuousClock.now - start
            precondition(passed == iterations, "a benchmarked stage did not pass a valid frame")
            means.append(elapsed.microseconds / Double(iterations))
        }
        return means.sorted()[means.count / 2]
    }

    static let epoch = ContinuousClock.now
    static let context = StageContext(streamID: "bench", logger: Logger(label: "bench"), sink: DiscardingSink())
}

/// A sink that drops everything, so `fan-out` is measured alone.
struct DiscardingSink: FrameSink {
    func publish(_ frame: Frame) {}
}

extension Duration {
    var microseconds: Double {
        Double(components.seconds) * 1e6 + Double(components.attoseconds) / 1e12
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
