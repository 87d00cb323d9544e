import Logging
import NIOCore
import Pipeline
import Stages
import WireProtocol

/// Everything a streamer's or viewer's message goes through before it can
/// reach a viewer: message parsing, base64 validation, the JPEG header and
/// full decode checks and the downscale, with the strictest built-in
/// pipeline. The first input byte picks the path; the rest is the message.
struct DiscardingSink: FrameSink {
    func publish(_ frame: Frame) {}
    func needsLowRendition(streamID: String) -> Bool { true }  // so downscale runs too
}

let pipeline: PipelineDefinition = {
    let json = #"""
    {"default": "fuzz", "pipelines": {"fuzz": {"stages": [
      {"stage": "size-limit", "maxBytes": 4000000}, {"stage": "base64-validation"},
      {"stage": "decode-check", "mode": "header", "maxWidth": 4096, "maxHeight": 4096},
      {"stage": "decode-check", "mode": "full"}, {"stage": "error-counter", "maxErrors": 1000000},
      {"stage": "downscale", "when": "always", "renditions": [{"scale": "1/2"}, {"scale": "1/4", "quality": 40}]}, {"stage": "fan-out"}]}}}
    """#
    let config = try! PipelineConfigLoader(registry: .builtIn).load(text: json)
    return config.pipeline(named: "fuzz")!
}()
// libFuzzer calls the entry point from one thread only, one input at a time;
// one runner across inputs also fuzzes the stages' per-stream state.
nonisolated(unsafe) var runner = pipeline.makeRunner(context: StageContext(
    streamID: "fuzz", logger: Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() }, sink: DiscardingSink()))
nonisolated(unsafe) var seq: UInt64 = 0

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let body = UnsafeBufferPointer(start: data + 1, count: size - 1)
    seq += 1
    switch data[0] % 3 {
    case 0:  // a streamer's text message
        let text = String(decoding: body, as: UTF8.self)
        switch InboundMessage.streamer(text: text, streamID: "fuzz", seq: seq, arrival: .now) {
        case .frame(let frame): _ = runner.run(frame)
        case .invalid(let rejection): _ = runner.reject(rejection)
        default: break
        }
    case 1:  // a streamer's binary message: raw JPEG bytes
        let frame = Frame(streamID: "fuzz", seq: seq, arrival: .now, payload: .binary(ByteBuffer(bytes: body)))
        _ = runner.run(frame)
    default:  // a viewer's text message
        _ = InboundMessage.viewer(text: String(decoding: body, as: UTF8.self))
    }
    return 0
}
