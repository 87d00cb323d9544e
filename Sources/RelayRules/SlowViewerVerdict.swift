/// Whether a viewer keeps up, decided once per measuring window from how
/// many of the frames offered to it were replaced before they were written:
/// slow after one window losing more than `threshold` of its frames, back
/// to normal after three windows in a row losing under a quarter of that
/// (hysteresis, so a viewer near the line does not flap between verdicts).
///
/// The hub holds one per viewer; it is the one truth `/api/viewers` and
/// the logs read. Which rendition a viewer gets is its delivery policy's
/// choice, from the same loss figures and its link.
package struct SlowViewerVerdict: Sendable, Equatable {
    package private(set) var slow = false
    private var goodWindows = 0

    /// Windows with fewer offered frames than this say nothing.
    static let minimumOffered = 10

    package init() {}

    /// Closes a window; returns the new verdict when it changed.
    package mutating func close(offered: Int, replaced: Int, threshold: Double) -> Bool? {
        guard offered >= Self.minimumOffered else { return nil }
        let loss = Double(replaced) / Double(offered)
        if !slow, loss > threshold {
            slow = true
            goodWindows = 0
            return true
        }
        guard slow else { return nil }
        goodWindows = loss < threshold / 4 ? goodWindows + 1 : 0
        guard goodWindows >= 3 else { return nil }
        slow = false
        goodWindows = 0
        return false
    }
}
