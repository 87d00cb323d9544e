import FramepipeServer
import TestFixtures
import NIOCore
import Pipeline
import Testing

/// Large frames, so a viewer that stops reading fills the loopback socket
/// buffers within a second or two instead of minutes.
private let bigFrames: [ByteBuffer] = (0..<3).map { TestPattern.jpeg(width: 1280, height: 720, targetBytes: 300_000, frame: $0) }

private let bigFramePipelines = #"""
{"default": "standard", "pipelines": {"standard": {"stages": [
  {"stage": "size-limit", "maxBytes": 4000000}, {"stage": "base64-validation"}, {"stage": "decode-check"},
  {"stage": "error-counter"}, {"stage": "downscale", "when": "slow-viewers", "scale": "1/4", "quality": 50}, {"stage": "fan-out"}]}}}
"""#

/// Sends `count` frames at `fps`, paced by the clock.
private func stream(_ streamer: TestSocket, count: Int, fps: Int) async throws {
    let start = ContinuousClock.now
    for i in 0..<count {
        streamer.send(bigFrames[i % bigFrames.count])
        try await Task.sleep(until: start + .milliseconds(1000 * (i + 1) / fps))
    }
}

@Suite("Slow and stuck viewers", .timeLimit(.minutes(2)), .serialized)
struct SlowViewerTests {
    @Test func stuckViewerIsClosedAndNeverSlowsTheOthers() async throws {
        #expect(bigFrames[0].readableBytes > 250_000)
        try await withRelay(.test { $0.viewerSendTimeout = .seconds(1) }, pipelinesJSON: bigFramePipelines) { relay in
            let normal = try await relay.viewer("format=binary")
            let stuck = try await relay.viewer("format=binary", reading: false)
            try await normal.waitFor(type: "viewer_connected")
            let streamer = try await relay.streamer("cam")
            // Stream as a camera does, until the stuck viewer is gone (its
            // socket buffers fill, then viewerSendTimeout passes with nothing
            // accepted while frames wait), and a second more.
            let start = ContinuousClock.now
            var sent = 0
            var droppedAt: Int?
            while sent < 600, droppedAt.map({ sent < $0 + 30 }) ?? true {
                streamer.send(bigFrames[sent % bigFrames.count])
                sent += 1
                try await Task.sleep(until: start + .milliseconds(1000 * sent / 30))
                if droppedAt == nil, relay.log.contains("viewer removed", ["viewer_id": "v-2", "reason": "send_timeout", "viewers_remaining": "1"]) {
                    droppedAt = sent
                }
            }
            let elapsed = ContinuousClock.now - start
            #expect(droppedAt != nil, "the stuck viewer was never dropped")
            try await relay.eventually("normal viewer has the last frame") {
                normal.binaryFrames.last?.header["seq"] == .number(Double(sent - 1))
            }
            let received = normal.binaryFrames.count
            #expect(Double(received) >= Double(sent) * 0.95, "normal viewer got \(received) of \(sent)")
            #expect(elapsed < .milliseconds(Int64(sent) * 1000 / 30 + 1000), "the streamer was never slowed: \(sent) frames in \(elapsed)")
            #expect(relay.log.contains("viewer accepts nothing, dropping it", ["viewer_id": "v-2"]))
            let viewers = try await relay.api("/api/viewers")
            #expect(viewers == .array([try #require({ if case .array(let a) = viewers { a.first } else { nil } }())]))
            _ = stuck
        }
    }

    @Test func slowViewerGetsLowFramesWhileTheFastOneGetsFull() async throws {
        try await withRelay(.test { $0.viewerSendTimeout = .seconds(5) }, pipelinesJSON: bigFramePipelines) { relay in
            let fast = try await relay.viewer("format=binary")
            let slow = try await relay.viewer("format=binary", readDelay: .milliseconds(150))
            try await fast.waitFor(type: "viewer_connected")
            let streamer = try await relay.streamer("cam")
            try await stream(streamer, count: 150, fps: 30)
            try await relay.eventually("slow viewer marked slow") { relay.log.contains("viewer is slow, sending it the low rendition", ["viewer_id": "v-2"]) }
            try await relay.eventually("slow viewer receives a low frame", timeout: .seconds(10)) {
                slow.binaryFrames.contains { $0.header["quality"] == .string("low") }
            }
            let lowFrame = try #require(slow.binaryFrames.first { $0.header["quality"] == .string("low") })
            #expect(lowFrame.jpeg.readableBytes < bigFrames[0].readableBytes / 4)
            #expect(fast.binaryFrames.allSatisfy { $0.header["quality"] == .string("full") })
            #expect(Double(fast.binaryFrames.count) >= 150 * 0.95)
            let slowSeqs = slow.binaryFrames.compactMap { $0.header["seq"]?.numberValue }
            #expect(slowSeqs == slowSeqs.sorted(), "a slow viewer loses older frames, never order")
            #expect(slowSeqs.count < 150, "the slow viewer lost frames instead of slowing anyone")
            let viewers = try await relay.api("/api/viewers")
            guard case .array(let list) = viewers else { Issue.record("no viewers"); return }
            let slowEntry = try #require(list.first { $0["id"] == .string("v-2") })
            #expect((slowEntry["loss_percent"]?.numberValue ?? 0) > 0)
        }
    }
}
