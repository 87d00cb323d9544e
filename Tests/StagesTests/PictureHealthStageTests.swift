import Foundation
import NIOCore
@testable import Pipeline
@testable import Stages
import Testing
import TestFixtures

/// `picture-health` on generated pictures, with the clock in the test's
/// hands: each frame's arrival is set, so "20 s without change" takes no time.
@Suite("picture-health stage")
struct PictureHealthStageTests {
    static let width = 320, height = 240
    static let start = ContinuousClock.now

    /// A run of frames `interval` apart, through one stage instance.
    struct Camera {
        var stage: PictureHealthStage
        let sink: RecordingSink
        var seconds = 0.0

        /// `standing`: what the stream's picture was said to be before this instance started.
        init(_ parameters: [String: JSONValue] = ["every": .number(1)], standing: [StageEvent] = []) {
            sink = RecordingSink(standing: standing)
            stage = makeStage(PictureHealthStage.self, parameters, sink: sink)
        }

        mutating func send(_ jpeg: ByteBuffer, for duration: Double, every interval: Double = 0.5) {
            var elapsed = 0.0
            while elapsed < duration {
                var frame = Frame(streamID: "S-1", seq: UInt64(seconds * 10), arrival: start + .milliseconds(Int64(seconds * 1000)),
                                  receivedAt: 1_800_000_000_000 + Int64(seconds * 1000), payload: .binary(jpeg))
                #expect(stage.process(&frame) == .pass)
                seconds += interval
                elapsed += interval
            }
        }

        /// A moving, noisy picture, as a live camera sends: a new one each call.
        var movingIndex = 0
        mutating func live(for duration: Double, every interval: Double = 0.5) {
            var elapsed = 0.0
            while elapsed < duration {
                movingIndex += 1
                send(TestPattern.jpeg(width: width, height: height, frame: movingIndex), for: interval, every: interval)
                elapsed += interval
            }
        }

        var states: [String] { sink.events.map(\.state) }
    }

    static func gray(_ level: UInt8, noise: Int = 0, seed: UInt32 = 1) -> ByteBuffer {
        var pixels = [UInt8](repeating: level, count: width * height * 3)
        var s = seed
        if noise > 0 {
            for i in pixels.indices {
                s ^= s << 13; s ^= s >> 17; s ^= s << 5
                pixels[i] = UInt8(clamping: Int(level) + Int(s % UInt32(2 * noise + 1)) - noise)
            }
        }
        return TurboJPEG().compressRGB(pixels, width: width, height: height, quality: 85)
    }

    /// What an IR night camera sends: one grey channel, dim on the whole,
    /// with the bed lit by the IR lamp and texture everywhere.
    static var nightVision: ByteBuffer {
        var pixels = [UInt8](repeating: 0, count: width * height)
        var s: UInt32 = 7
        for y in 0..<height {
            for x in 0..<width {
                s ^= s << 13; s ^= s >> 17; s ^= s << 5
                let dx = Double(x - width / 2), dy = Double(y - height / 2)
                let lamp = 110 * exp(-(dx * dx + dy * dy) / 4000)
                pixels[y * width + x] = UInt8(clamping: Int(14 + lamp) + Int(s % 17) - 8 + ((x / 12 + y / 12) % 2) * 10)
            }
        }
        return TurboJPEG().compressGray(pixels, width: width, height: height, quality: 80)
    }

    /// A new instance on a stream that is already frozen (the camera
    /// reconnected, the config was reloaded) continues from that state.
    @Test func anInstanceStartedOnAFrozenStreamClearsItAndDoesNotSayItAgain() {
        let since = Date(timeIntervalSince1970: 1_799_999_000)
        var stillFrozen = Camera(standing: [StageEvent(kind: "picture", state: "frozen", since: since)])
        stillFrozen.send(TestPattern.jpeg(width: Self.width, height: Self.height, frame: 1), for: 60)
        #expect(stillFrozen.states == [], "frozen already, and said so")
        #expect(stillFrozen.stage.state == "frozen")

        var moving = Camera(standing: [StageEvent(kind: "picture", state: "frozen", since: since)])
        moving.live(for: 3.5)  // looks at 0 (the first: nothing to compare), 0.5 (moved) … 3 s
        #expect(moving.states == [])
        moving.live(for: 0.5)
        #expect(moving.states == ["ok"], "recoverAfter (3 s) after the first look that moved")

        var other = Camera(standing: [StageEvent(kind: "uplink", state: "late", since: since)])
        other.live(for: 10)
        #expect(other.states == [], "another kind is not this stage's")
    }

    @Test func aMovingPictureStaysOK() {
        var camera = Camera()
        camera.live(for: 60)
        #expect(camera.sink.events.isEmpty)
        #expect(camera.stage.state == "ok")
        #expect((camera.stage.lastLook?.largestChange ?? 0) > 20)
    }

    @Test func theSameJPEGRepeatedIsFrozenAfterFrozenAfterAndOKWhenItMovesAgain() throws {
        var camera = Camera()
        camera.live(for: 5)
        let still = TestPattern.jpeg(width: Self.width, height: Self.height, frame: 99)
        camera.send(still, for: 19.5)  // looks at 5.0 … 24.0 s
        #expect(camera.sink.events.isEmpty, "not before 20 s")
        camera.send(still, for: 1.5)  // 24.5, 25.0, 25.5: 20 s after the first unchanged look
        let frozen = try #require(camera.sink.events.first)
        #expect(frozen.kind == "picture" && frozen.state == "frozen")
        // Since the first look that saw no change: the repeat at 5.5 s, compared with the one at 5 s.
        #expect(frozen.since == Date(timeIntervalSince1970: 1_800_000_005.5))
        #expect(frozen.details.first { $0.key == "largest_change" }?.value == .number(0))
        camera.send(still, for: 30)
        #expect(camera.states == ["frozen"], "raised once, not at every look")
        camera.live(for: 2.5)
        #expect(camera.states == ["frozen"], "recovery takes recoverAfter (3 s)")
        camera.live(for: 1)
        #expect(camera.states == ["frozen", "ok"])
    }

    @Test func theSamePictureReEncodedAtAnotherQualityIsFrozenToo() {
        var camera = Camera()
        let pixels = TestPattern.pixels(width: Self.width, height: Self.height, frame: 3, detail: 0.3)
        let codec = TurboJPEG()
        let encodings = [90, 60, 75, 40].map { codec.compressRGB(pixels, width: Self.width, height: Self.height, quality: $0) }
        #expect(Set(encodings.map { Array($0.readableBytesView) }).count == 4, "four different byte strings")
        for _ in 0..<12 { for jpeg in encodings { camera.send(jpeg, for: 0.5) } }  // 24 s
        #expect(camera.states == ["frozen"])
        #expect((camera.stage.lastLook?.largestChange ?? 99) < 6)
    }

    @Test func aBlackPictureIsDarkButADimNightVisionPictureIsNot() {
        var dark = Camera()
        dark.live(for: 2)
        dark.send(Self.gray(2, noise: 3), for: 9)
        #expect(dark.sink.events.isEmpty)
        dark.send(Self.gray(2, noise: 3, seed: 2), for: 2)
        #expect(dark.states == ["dark"])
        dark.live(for: 3.5)
        #expect(dark.states == ["dark", "ok"])

        var night = Camera()
        for _ in 0..<60 { night.send(Self.nightVision, for: 0.5) }
        let look = night.stage.lastLook!
        #expect(look.meanLuma < 40 && look.peakLuma > 60, "dim on the whole, lit where the lamp is: \(look)")
        #expect(!night.states.contains("dark") && !night.states.contains("covered"))
    }

    @Test func aDarkRoomThatStaysStillIsToldAsDarkNotFrozen() {
        var camera = Camera()
        camera.live(for: 2)
        camera.send(Self.gray(2), for: 40)  // one black JPEG, past both darkAfter and frozenAfter
        #expect(camera.states == ["dark"], "dark says why nothing changes: \(camera.states)")
        camera.send(TestPattern.jpeg(width: Self.width, height: Self.height, frame: 99), for: 40)  // lit again, but stuck
        #expect(camera.states == ["dark", "frozen"])
    }

    @Test func aFlatGreyPictureIsCoveredAndRecovers() {
        var camera = Camera()
        camera.live(for: 2)
        // A blanket: featureless, but with a live sensor's noise (so not frozen).
        var seed: UInt32 = 1
        for _ in 0..<22 {
            seed += 1
            camera.send(Self.gray(128, noise: 2, seed: seed), for: 0.5)
        }
        #expect(camera.states == ["covered"])
        let event = camera.sink.events[0]
        #expect((event.details.first { $0.key == "luma_stddev" }?.value.numberValue ?? 99) < 6)
        camera.live(for: 4)
        #expect(camera.states == ["covered", "ok"])
    }

    @Test func aPictureHoveringAtAThresholdDoesNotFlap() {
        var camera = Camera(["every": .number(1), "darkAfter": .number(2), "recoverAfter": .number(1)])
        camera.live(for: 1)
        // Mean luma alternating just below and just above darkMean (20), never a quarter above it.
        for i in 0..<80 { camera.send(Self.gray(i % 2 == 0 ? 14 : 22, noise: 2, seed: UInt32(i + 1)), for: 0.5) }
        #expect(camera.states == ["dark"], "\(camera.states)")
    }

    @Test func onlyEveryNthFrameIsLookedAt() {
        var camera = Camera(["every": .number(4)])
        let still = TestPattern.jpeg(width: Self.width, height: Self.height, frame: 5)
        camera.send(still, for: 19.5, every: 0.25)  // 78 frames, 20 looks
        #expect(camera.sink.events.isEmpty)
        camera.send(still, for: 2, every: 0.25)
        #expect(camera.states == ["frozen"])
    }

    @Test func aFastCameraIsLookedAtTwiceASecondAtTheDefaults() {
        var camera = Camera([:])
        camera.live(for: 2, every: 0.033)  // 61 frames at 30 fps
        #expect(camera.stage.looks == 4, "at 0, 0.528, 1.056 and 1.584 s")
        camera = Camera([:])
        camera.live(for: 5, every: 1)  // a 1 fps camera: each frame
        #expect(camera.stage.looks == 5)
    }

    @Test func aRepeatedJPEGInAFreshBufferIsJudgedWithoutADecode() {
        var camera = Camera()
        let still = Array(buffer: TestPattern.jpeg(width: Self.width, height: Self.height, frame: 3))
        for _ in 0..<42 { camera.send(ByteBuffer(bytes: still), for: 0.5) }  // 21 s, each frame its own copy
        #expect(camera.states == ["frozen"])
        #expect(camera.stage.looks == 42 && camera.stage.decodes == 1)
        camera.live(for: 4)
        #expect(camera.states == ["frozen", "ok"])
        #expect(camera.stage.decodes == 9)
    }

    @Test func thresholdsAreDeclaredAndChecked() {
        let names = PictureHealthStage.declaration.parameters.map(\.name)
        #expect(names == ["every", "interval", "frozenAfter", "frozenDelta", "darkAfter", "darkMean", "darkPeak", "coveredAfter", "coveredStdDev", "recoverAfter"])
        let text = #"{"default": "p", "pipelines": {"p": {"stages": [{"stage": "picture-health", "every": 0, "darkMean": "low"}, {"stage": "fan-out"}]}}}"#
        #expect(throws: ConfigError.self) { try PipelineConfigLoader(registry: .builtIn).load(text: text) }
    }
}
