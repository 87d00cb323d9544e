import NIOCore
import Pipeline
import Stages

/// The picture `GET /api/streams/{id}/snapshot.jpg?width=&height=` answers
/// with: the smallest rendition of the stream's ladder at least that large
/// (an MJPEG client's rule), taken from the latest frame when a viewer
/// already had it made, else made now; the frame itself without a size, or
/// when the stream's pipeline has no ladder.
enum SnapshotPicture {
    struct Picture {
        let jpeg: ByteBuffer
        /// `full`, or the step's scale (`3/8`).
        let rendition: String
    }

    static func of(_ frame: Frame, width: Int?, height: Int?) -> Picture? {
        var frame = frame
        guard let full = frame.resolveJPEG() else { return nil }
        guard width != nil || height != nil, let ladder = frame.ladder, let header = frame.header, !header.isFourChannel else {
            return Picture(jpeg: full, rendition: "full")
        }
        // The lowest rung still at least as large as asked (rungs shrink as they go down).
        let rung = (1...max(1, ladder.lowestRung)).last { rung in
            guard rung <= ladder.lowestRung else { return false }
            let step = ladder.steps[rung - 1]
            return step.scaled(header.width) >= (width ?? 0) && step.scaled(header.height) >= (height ?? 0)
        }
        guard let rung else { return Picture(jpeg: full, rendition: "full") }
        if let made = frame.rendition(rung: rung) { return Picture(jpeg: made.jpeg, rendition: ladder.label(ofRung: rung)) }
        let step = ladder.steps[rung - 1]
        switch TurboJPEG().downscale(full, header: header, scale: (step.numerator, step.denominator), quality: step.quality) {
        case .success(let made): return Picture(jpeg: made.jpeg, rendition: ladder.label(ofRung: rung))
        case .failure: return Picture(jpeg: full, rendition: "full")
        }
    }
}
