import Pipeline

/// What a stream's pictures cost: its ladder, its size, and the bytes per
/// frame of each rung, smoothed over the last frames, so a delivery policy
/// can weigh a rung's bytes × fps against a viewer's goodput. A rung not
/// made lately keeps its last measure; one never made is estimated from
/// the full frame and its scale factor (area), until it is.
struct PictureFigures: Equatable {
    private(set) var ladder = RenditionLadder.fullOnly
    private(set) var width: Int?
    private(set) var height: Int?
    /// JPEG bytes per frame by rung; 0 = never measured.
    private(set) var bytes: [Double] = [0]

    init() {}

    /// Learns from an accepted frame (after the relay stages).
    mutating func record(_ frame: Frame) {
        if let declared = frame.ladder, declared != ladder {
            ladder = declared
            bytes = Array(bytes.prefix(declared.rungCount)) + Array(repeating: 0, count: max(0, declared.rungCount - bytes.count))
        }
        let full = frame.jpeg?.readableBytes ?? frame.payloadSize * 3 / 4
        Self.smooth(&bytes[0], Double(full))
        if let header = frame.header {
            width = header.width
            height = header.height
        }
        for rendition in frame.renditions where bytes.indices.contains(rendition.rung) {
            Self.smooth(&bytes[rendition.rung], Double(rendition.jpeg.readableBytes))
            if width == nil {
                let factor = ladder.factor(ofRung: rendition.rung)
                width = Int((Double(rendition.width) / factor).rounded())
                height = Int((Double(rendition.height) / factor).rounded())
            }
        }
    }

    private static func smooth(_ value: inout Double, _ sample: Double) {
        value = value == 0 ? sample : value + (sample - value) * 0.2
    }

    /// Every rung as a policy sees it, with bytes as this viewer's format costs them.
    func options(json: Bool) -> [RungOption] {
        (0..<ladder.rungCount).map { rung in
            let factor = ladder.factor(ofRung: rung)
            let measured = bytes.indices.contains(rung) ? bytes[rung] : 0
            let jpeg = measured > 0 ? measured : bytes[0] * factor * factor
            let step = rung == 0 ? nil : ladder.steps[rung - 1]
            return RungOption(label: ladder.label(ofRung: rung),
                              width: width.map { step?.scaled($0) ?? $0 }, height: height.map { step?.scaled($0) ?? $0 },
                              bytesPerFrame: json ? jpeg * 4 / 3 : jpeg)
        }
    }
}
