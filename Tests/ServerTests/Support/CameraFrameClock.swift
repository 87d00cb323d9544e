/// A camera's own frame clock: frame n is due n/fps after the first. The
/// tests that play a camera in real time (a shaped link, filling socket
/// buffers) pace themselves by it; the one place a test waits for real
/// time to pass on purpose, because a camera's rate is what they are about.
struct CameraFrameClock {
    let fps: Int
    private let start = ContinuousClock.now

    init(fps: Int = 30) {
        self.fps = fps
    }

    /// Waits until frame `n` (counting from 0) is due.
    func waitForFrame(_ n: Int) async throws {
        try await Task.sleep(until: start + .milliseconds(1000 * Int64(n) / Int64(fps)))
    }

    var elapsed: Duration { ContinuousClock.now - start }
}
