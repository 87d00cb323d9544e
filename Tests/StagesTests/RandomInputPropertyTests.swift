import TestFixtures
import NIOCore
@testable import Pipeline
import PropertyBased
@testable import Stages
import Testing

/// Every built-in stage, in a `strict`-like chain, on arbitrary bytes: no
/// crash, no hang, and nothing reaches the sink unless it is a real JPEG.
@Suite("Random input")
struct RandomInputPropertyTests {
    static let anyBytes = Gen<UInt8>.value(in: 0...255).array(of: 0...3000)

    static func chain(_ sink: RecordingSink) throws -> PipelineRunner {
        let text = #"""
        {"default": "p", "pipelines": {"p": {"stages": [
          {"stage": "size-limit"}, {"stage": "base64-validation"}, {"stage": "decode-check", "mode": "full"},
          {"stage": "error-counter", "maxErrors": 1000000}, {"stage": "downscale", "when": "always"}, {"stage": "fan-out"}]}}}
        """#
        return try PipelineConfigLoader(registry: .builtIn).load(text: text).pipelines[0].makeRunner(context: .test(sink))
    }

    @Test func randomBinaryPayloadsAreRejectedNotCrashing() async throws {
        let sink = RecordingSink()
        nonisolated(unsafe) var runner = try Self.chain(sink)
        await propertyCheck(count: 1500, input: Self.anyBytes) { bytes in
            _ = runner.run(binaryFrame(bytes))
        }
        #expect(sink.frames.isEmpty)
    }

    @Test func randomTextPayloadsAreRejectedNotCrashing() async throws {
        let sink = RecordingSink()
        nonisolated(unsafe) var runner = try Self.chain(sink)
        await propertyCheck(count: 1500, input: Gen<UInt8>.value(in: 0...127).array(of: 0...500)) { bytes in
            let text = "data:image/jpeg;base64," + String(decoding: bytes, as: UTF8.self)
            _ = runner.run(textFrame(text))
        }
        #expect(sink.frames.isEmpty)
    }

    @Test func randomlyMutatedJPEGsNeverCrashAnyStage() async throws {
        let sink = RecordingSink()
        nonisolated(unsafe) var runner = try Self.chain(sink)
        let original = Fixtures.jpegBytes
        let mutations = Gen<Int>.int(in: 0...(original.count - 1)).array(of: 1...40)
        await propertyCheck(count: 400, input: mutations, Gen<UInt8>.value(in: 0...255)) { positions, value in
            var bytes = original
            for p in positions { bytes[p] = value &+ UInt8(truncatingIfNeeded: p) }
            _ = runner.run(binaryFrame(bytes))
            // Whatever passed must decode fully as a JPEG.
            for frame in sink.frames {
                var check = binaryFrame(frame.jpeg!)
                #expect(makeStage(DecodeCheckStage.self, ["mode": .string("full")]).processed(&check) == .pass)
            }
        }
    }
}
