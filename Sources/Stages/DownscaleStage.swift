import Pipeline

/// Makes the `low` rendition of a frame with libturbojpeg's DCT scaling and
/// a re-encode, once per frame however many viewers get it. Under
/// `slow-viewers` it works only while the sink says some viewer of the
/// stream needs it; under `always`, for every frame.
///
/// A frame that cannot be decoded is rejected (code `corrupt_jpeg`). A
/// valid frame it cannot shrink (a four-channel CMYK/YCCK JPEG, which has
/// no YUV planes to scale) goes on at full size: a slow viewer gets it
/// full rather than not at all. Per stream it keeps a libturbojpeg handle
/// and scratch planes.
public struct DownscaleStage: Stage {
    public struct Configuration: Sendable {
        public var always: Bool
        public var scale: (num: Int, den: Int)
        public var quality: Int
    }

    static let when = Parameter.choice(
        "when", ["slow-viewers", "always"], default: "slow-viewers",
        help: "slow-viewers: only while a viewer needs the low rendition; always: every frame")
    static let scale = Parameter.choice(
        "scale", TurboJPEG.downscaleFactors, default: "1/2",
        help: "Size of the low rendition (libturbojpeg DCT scaling factors)")
    static let quality = Parameter.integer(
        "quality", default: 60, in: 1...100, help: "JPEG quality of the low rendition")

    public static let declaration = StageDeclaration(
        name: "downscale",
        summary: "Make a smaller low rendition for slow viewers, once per frame",
        details: "Adds the low rendition to the frame; rejects undecodable frames with corrupt_jpeg; passes a valid frame it cannot shrink (CMYK) at full size. "
            + "Keeps a libturbojpeg handle per stream. "
            + "In a cluster it also runs on frames from other nodes, on the node whose viewers need the low rendition.",
        parameters: [when, scale, quality],
        runsOnRelayedFrames: true)

    public static func configuration(from parameters: StageParameters) -> Configuration {
        let parts = parameters[scale].split(separator: "/").compactMap { Int($0) }
        return Configuration(always: parameters[when] == "always", scale: (parts[0], parts[1]), quality: parameters[quality])
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
        guard configuration.always || context.sink.needsLowRendition(streamID: frame.streamID) else { return .pass }
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
                context.logger.notice("frames are \(header.colorspace) JPEGs, which cannot be downscaled; viewers that need low get them at full size")
            }
            return .pass
        }
        switch codec.downscale(jpeg, header: header, scale: configuration.scale, quality: configuration.quality) {
        case .failure(let failure):
            return .reject(Rejection(stage: Self.declaration.name, code: failure.code, detail: failure.message))
        case .success(let rendition):
            frame.lowRendition = rendition
            return .pass
        }
    }
}
