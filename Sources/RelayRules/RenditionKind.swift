/// Which copy of a frame a viewer gets: a rung of the stream's rendition
/// ladder, 0 being the frame as it arrived.
package struct RenditionKind: Hashable, Sendable, CustomStringConvertible {
    package let rung: Int
    package init(rung: Int) { self.rung = rung }
    package static let full = RenditionKind(rung: 0)
    /// The first step below full.
    static let low = RenditionKind(rung: 1)
    /// The contract's `quality`: "full", or "low" for any smaller rung.
    package var quality: String { rung == 0 ? "full" : "low" }
    /// "full", "low", "low2", …: short, for logs and test transcripts.
    package var description: String { rung <= 1 ? quality : "low\(rung)" }
}
