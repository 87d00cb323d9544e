import NIOCore
import Pipeline

/// Drops a frame that is byte-for-byte the same as the previous one, which
/// is what a camera sends when its picture is frozen: relaying it again costs
/// every viewer bandwidth and shows nothing new.
///
/// Every `keepEvery`-th repeat is let through, so a static scene still
/// refreshes the viewers' tiles and never looks stalled. Per stream it keeps
/// the previous frame's bytes and the count of repeats.
public struct DropDuplicatesStage: Stage {
    public struct Configuration: Sendable {
        public var keepEvery: Int
    }

    static let keepEvery = Parameter.integer(
        "keepEvery", default: 30, in: 1...100_000,
        help: "Let one repeat through after this many consecutive identical frames")

    public static let declaration = StageDeclaration(
        name: "drop-duplicates",
        summary: "Drop frames identical to the previous one (a frozen camera)",
        details: "Drops (not rejects) with reason duplicate. Keeps the previous frame's bytes per stream.",
        parameters: [keepEvery])

    public static func configuration(from parameters: StageParameters) -> Configuration {
        Configuration(keepEvery: parameters[keepEvery])
    }

    let configuration: Configuration
    var previous: ByteBuffer?
    var repeats = 0

    public init(configuration: Configuration, context: StageContext) {
        self.configuration = configuration
    }

    public mutating func process(_ frame: inout Frame) -> StageOutcome {
        // Compare what arrived: the data URL text or the raw bytes.
        let current: ByteBuffer
        switch frame.payload {
        case .binary(let bytes): current = bytes
        case .dataURL(let text): current = ByteBuffer(string: text)
        }
        defer { previous = current }
        guard current == previous else {
            repeats = 0
            return .pass
        }
        repeats += 1
        if repeats % configuration.keepEvery == 0 { return .pass }
        return .drop(reason: "duplicate")
    }
}
