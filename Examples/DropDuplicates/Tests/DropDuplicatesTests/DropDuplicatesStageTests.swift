import DropDuplicates
import Foundation
import Logging
import NIOCore
import Pipeline
import Stages
import Testing

/// A sink that keeps the stream events the stage raises, and no frames.
private final class EventSink: FrameSink, @unchecked Sendable {
    private let lock = NSLock()
    private var raised: [StageEvent] = []
    var events: [StageEvent] { lock.withLock { raised } }
    func publish(_ frame: Frame) {}
    func streamEvent(_ event: StageEvent, streamID: String) { lock.withLock { raised.append(event) } }
}

private func stage(keepEvery: Int = 30, tellAfter: Int = 90, sink: EventSink = EventSink()) -> DropDuplicatesStage {
    DropDuplicatesStage(
        configuration: DropDuplicatesStage.configuration(from: StageParameters([
            "keepEvery": .number(Double(keepEvery)), "tellAfter": .number(Double(tellAfter))])),
        context: StageContext(streamID: "S", logger: Logger(label: "test"), sink: sink))
}

private func frame(_ bytes: [UInt8]) -> Frame {
    Frame(streamID: "S", seq: 0, payload: .binary(ByteBuffer(bytes: bytes)))
}

@Suite("drop-duplicates")
struct DropDuplicatesStageTests {
    @Test func dropsByteIdenticalConsecutiveFrames() {
        var s = stage()
        var a = frame([1, 2, 3]), b = frame([1, 2, 3]), c = frame([1, 2, 4])
        #expect(s.process(&a) == .pass)
        #expect(s.process(&b) == .drop(reason: "duplicate"))
        #expect(s.process(&c) == .pass)
    }

    @Test func letsEveryNthRepeatThrough() {
        var s = stage(keepEvery: 3)
        var outcomes: [StageOutcome] = []
        for _ in 0..<7 {
            var f = frame([9])
            outcomes.append(s.process(&f))
        }
        #expect(outcomes == [.pass, .drop(reason: "duplicate"), .drop(reason: "duplicate"), .pass,
                             .drop(reason: "duplicate"), .drop(reason: "duplicate"), .pass])
    }

    @Test func raisesARepeatsEventOnceAndOKWhenThePictureChanges() {
        let sink = EventSink()
        var s = stage(keepEvery: 3, tellAfter: 4, sink: sink)
        for _ in 0..<10 {
            var f = frame([7])
            _ = s.process(&f)
        }
        #expect(sink.events.map(\.state) == ["repeating"], "told once, at the 4th repeat")
        #expect(sink.events[0].kind == "repeats" && sink.events[0].details.first?.value == .number(4))
        var changed = frame([8])
        #expect(s.process(&changed) == .pass)
        #expect(sink.events.map(\.state) == ["repeating", "ok"])
    }

    @Test func registersBesideTheBuiltInsAndLoadsFromJSON() throws {
        var registry = StageRegistry.builtIn
        try registry.register(DropDuplicatesStage.self)
        #expect(registry.names.contains("drop-duplicates"))
        #expect(throws: StageRegistryError.duplicateName("drop-duplicates")) { try registry.register(DropDuplicatesStage.self) }
        let text = #"{"default": "d", "pipelines": {"d": {"stages": [{"stage": "drop-duplicates", "keepEvery": 5}, {"stage": "fan-out"}]}}}"#
        let config = try PipelineConfigLoader(registry: registry).load(text: text)
        #expect(config.pipelines[0].stages[0].declaration.name == "drop-duplicates")
        #expect(throws: ConfigError.self) {
            try PipelineConfigLoader(registry: registry).load(text: text.replacingOccurrences(of: "\"keepEvery\": 5", with: "\"keepEvery\": 0"))
        }
    }
}
