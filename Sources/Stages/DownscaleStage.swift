import Pipeline

/// Makes the smaller renditions of a frame — the steps of the stream's
/// rendition ladder — with libturbojpeg's DCT scaling and a re-encode,
/// each at most once per frame however many viewers get it.
///
/// The ladder is `renditions` (largest first), or the single step `scale`
/// at `quality`. Under `slow-viewers` it makes only the steps the sink says
/// some viewer is being sent (`FrameSink.wantedRenditions`), so a ladder
/// costs nothing while every viewer takes full frames; under `always`, it
/// makes every step for every frame and viewers that did not ask for
/// `full` never get rung 0. It declares the ladder on every frame it passes,
/// so the relay knows what it may choose from.
///
/// A frame that cannot be decoded is rejected (code `corrupt_jpeg`). A
/// valid frame it cannot shrink (a four-channel CMYK/YCCK JPEG, which has
/// no YUV planes to scale) goes on at full size: a viewer on a smaller
/// rung gets it full rather than not at all. Per stream it keeps a
/// libturbojpeg handle and scratch planes.
public struct DownscaleStage: Stage {
    public struct Configuration: Sendable {
        public var always: Bool
        public var ladder: RenditionLadder
    }

    static let when = Parameter.choice(
        "when", ["slow-viewers", "always"], default: "slow-viewers",
        help: "slow-viewers: make a rendition only while a viewer is sent it; always: every rendition of every frame, and no full frames unless asked for")
    static let scale = Parameter.choice(
        "scale", TurboJPEG.downscaleFactors, default: "1/2",
        help: "Size of the one smaller rendition when there is no renditions list (libturbojpeg DCT scaling factors)")
    static let quality = Parameter.integer(
        "quality", default: 60, in: 1...100, help: "JPEG quality of that rendition")
    static let stepScale = Parameter.choice("scale", TurboJPEG.downscaleFactors, default: "1/2", help: "scale factor")
    static let stepQuality = Parameter.integer("quality", default: 60, in: 1...100, help: "JPEG quality")
    static let renditions = Parameter.objectList(
        "renditions", fields: [stepScale, stepQuality],
        help: "The ladder below full, largest first, e.g. [{\"scale\":\"1/2\",\"quality\":60},{\"scale\":\"1/4\",\"quality\":50}]; replaces scale and quality")

    public static let declaration = StageDeclaration(
        name: "downscale",
        summary: "Make smaller renditions (a ladder) for viewers that need them, each once per frame",
        details: "Adds the renditions some viewer is sent to the frame; rejects undecodable frames with corrupt_jpeg; passes a valid frame it cannot shrink (CMYK) at full size. "
            + "Keeps a libturbojpeg handle per stream. "
            + "In a cluster it also runs on frames from other nodes, on the node whose viewers need the renditions.",
        parameters: [when, scale, quality, renditions],
        runsOnRelayedFrames: true,
        crossCheck: { parameters in
            guard let steps = parameters[renditions] else { return [] }
            var problems: [ParameterSpec.Problem] = []
            for name in ["scale", "quality"] where parameters.values[name] != nil {
                problems.append(.init("\"renditions\" replaces \"scale\" and \"quality\"; give one or the other", at: name))
            }
            let factors = steps.map { RenditionStep(scale: $0[stepScale], quality: $0[stepQuality])!.factor }
            for i in factors.indices.dropFirst() where factors[i] >= factors[i - 1] {
                problems.append(.init("steps must get smaller: \(steps[i][stepScale]) follows \(steps[i - 1][stepScale])", at: "renditions[\(i)].scale"))
            }
            if factors.count > 8 { problems.append(.init("at most 8 steps, got \(factors.count)", at: "renditions")) }
            return problems
        })

    public static func configuration(from parameters: StageParameters) -> Configuration {
        let steps = parameters[renditions].map { entries in
            entries.map { RenditionStep(scale: $0[stepScale], quality: $0[stepQuality])! }
        } ?? [RenditionStep(scale: parameters[scale], quality: parameters[quality])!]
        let always = parameters[when] == "always"
        return Configuration(always: always, ladder: RenditionLadder(steps: steps, fullForAuto: !always))
    }

    let configuration: Configuration
    let context: StageContext
    let codec = TurboJPEG()
    /// Said once per stream, not per frame.
    var reportedUnshrinkable = false

    public init(configuration: Configuration, context: StageContext) {
        self.configuration = configuration
        self.context = context
    }

    public mutating func process(_ frame: inout Frame) -> StageOutcome {
        let ladder = configuration.ladder
        frame.ladder = ladder
        let wanted = configuration.always ? RenditionSet(1..<ladder.rungCount) : context.sink.wantedRenditions(streamID: frame.streamID, ladder: ladder)
        guard wanted.needsDownscaled else { return .pass }
        guard let jpeg = frame.resolveJPEG() else {
            return .reject(Rejection(stage: Self.declaration.name, code: "not_jpeg", detail: "payload is not a decodable image data URL"))
        }
        let header: JPEGHeader
        if let known = frame.header {
            header = known
        } else {
            switch codec.readHeader(jpeg) {
            case .failure(let failure): return .reject(Rejection(stage: Self.declaration.name, code: failure.code, detail: failure.message))
            case .success(let h): header = h; frame.header = h
            }
        }
        if header.isFourChannel {
            if !reportedUnshrinkable {
                reportedUnshrinkable = true
                context.logger.notice("frames are \(header.colorspace) JPEGs, which cannot be downscaled; viewers of smaller renditions get them at full size")
            }
            return .pass
        }
        for rung in wanted.rungs where rung >= 1 && rung <= ladder.lowestRung {
            let step = ladder.steps[rung - 1]
            switch codec.downscale(jpeg, header: header, scale: (step.numerator, step.denominator), quality: step.quality) {
            case .failure(let failure):
                return .reject(Rejection(stage: Self.declaration.name, code: failure.code, detail: failure.message))
            case .success(var rendition):
                rendition.rung = rung
                frame.renditions.append(rendition)
            }
        }
        return .pass
    }
}
