/// A stream's frame rate and capture age over the last quarter hour, one
/// point per `interval`, for the admin page's charts: an operator sees
/// when a camera's link went bad without reading numbers. Bounded: 90
/// points per stream, whatever its age.
package struct StreamHistory: Sendable, Equatable {
    package static let interval: Duration = .seconds(10)
    static let points = 90

    /// Oldest first; an age is nil for a period with no capture times.
    package private(set) var fps: [Double] = []
    package private(set) var ageP95: [Int64?] = []

    private var pending: Duration = .zero
    private var frames: Double = 0
    private var worstAge: Int64?

    init() {}

    /// Adds one sampling period: `fps` over `elapsed`, and the capture age p95 at its end.
    mutating func add(fps rate: Double, age: Int64?, elapsed: Duration) {
        pending += elapsed
        frames += rate * elapsed.seconds
        if let age { worstAge = max(worstAge ?? age, age) }
        guard pending >= Self.interval else { return }
        fps.append(frames / pending.seconds)
        ageP95.append(worstAge)
        if fps.count > Self.points {
            fps.removeFirst(fps.count - Self.points)
            ageP95.removeFirst(ageP95.count - Self.points)
        }
        pending = .zero
        frames = 0
        worstAge = nil
    }
}
