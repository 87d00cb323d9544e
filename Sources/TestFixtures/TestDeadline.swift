/// How long a test waits for an event it expects before it fails.
///
/// A wait ends when its event comes, so only a test that is already failing
/// waits this long; the deadline is generous so that a right test does not
/// fail for a slow machine. Swift Testing runs the whole suite at once: on
/// two cores, with a hundred tests each starting a relay, setting one up
/// has taken 17 s, and a 5 s wait for a relay's first frame failed a test
/// that was right (CI, `everyDocumentedMetricMoves`). A test that means a
/// time (a node timeout, a rule's deadline) passes its own bound instead.
public enum TestDeadline {
    public static let event = Duration.seconds(20)
}
