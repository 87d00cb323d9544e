import Foundation
import NIOCore
import Pipeline

/// Drops a frame that is byte-for-byte the same as the previous one, which
/// is what a camera sends when its picture is frozen: relaying it again costs
/// every viewer bandwidth and shows nothing new.
///
/// Every `keepEvery`-th repeat is let through, so a static scene still
/// refreshes the viewers' tiles and never looks stalled. Per stream it keeps
/// the previous frame's bytes and the count of repeats.
///
/// After `tellAfter` repeats in a row it raises a stream event (kind
/// `repeats`, state `repeating`), which viewers, the dashboard, the API and
/// webhooks see as `stream_health`; a new picture raises `ok`. This is the
/// stage-event half of the stage protocol, used by a custom stage.
public struct DropDuplicatesStage: Stage {
    public struct Configuration: Sendable {
        public var keepEvery: Int
        public var tellAfter: Int
    }

    static let keepEvery = Parameter.integer(
        "keepEvery", default: 30, in: 1...100_000,
        help: "Let one repeat through after this many consecutive identical frames")
    static let tellAfter = Parameter.integer(
        "tellAfter", default: 90, in: 1...1_000_000,
        help: "Raise a repeats event after this many consecutive identical frames")

    public static let declaration = StageDeclaration(
        name: "drop-duplicates",
        summary: "Drop frames identical to the previous one (a frozen camera)",
        details: "Drops (not rejects) with reason duplicate; raises event kind repeats, state repeating or ok. Keeps the previous frame's bytes per stream.",
        parameters: [keepEvery, tellAfter])

    public static func configuration(from parameters: StageParameters) -> Configuration {
        Configuration(keepEvery: parameters[keepEvery], tellAfter: parameters[tellAfter])
    }

    let configuration: Configuration
    let context: StageContext
    var previous: ByteBuffer?
    var repeats = 0
    /// When the current run of repeats began, while it is being told.
    var repeatingSince: Date?

    public init(configuration: Configuration, context: StageContext) {
        self.configuration = configuration
        self.context = context
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
            if repeatingSince != nil {
                repeatingSince = nil
                context.raise(StageEvent(kind: "repeats", state: StageEvent.ok, since: Date(timeIntervalSince1970: Double(frame.receivedAt) / 1000)))
            }
            return .pass
        }
        repeats += 1
        if repeats == configuration.tellAfter {
            let since = Date(timeIntervalSince1970: Double(frame.receivedAt) / 1000)
            repeatingSince = since
            context.raise(StageEvent(kind: "repeats", state: "repeating", since: since, details: [("repeats", .number(Double(repeats)))]))
        }
        if repeats % configuration.keepEvery == 0 { return .pass }
        return .drop(reason: "duplicate")
    }
}
