import Synchronization

/// What one load-test client saw, updated from its connection's task and
/// read by the reporter.
final class ClientStatistics: Sendable {
    private struct State {
        var frames = 0
        var framesInWindow = 0
        var latenciesMs: [Double] = []
        var lastSeq: [String: UInt64] = [:]
        var outOfOrder = 0
        var closed = false
    }

    private let state = Mutex(State())

    func frame(stream: String, seq: UInt64, latencyMs: Double?, measuring: Bool) {
        state.withLock { s in
            s.frames += 1
            if let last = s.lastSeq[stream], seq <= last { s.outOfOrder += 1 }
            s.lastSeq[stream] = seq
            guard measuring else { return }
            s.framesInWindow += 1
            if let latencyMs { s.latenciesMs.append(latencyMs) }
        }
    }

    func markClosed() { state.withLock { $0.closed = true } }

    var snapshot: (frames: Int, inWindow: Int, latencies: [Double], outOfOrder: Int, closed: Bool) {
        state.withLock { ($0.frames, $0.framesInWindow, $0.latenciesMs, $0.outOfOrder, $0.closed) }
    }
}

/// When each frame of a stream was sent, by seq (the server numbers a
/// stream's frame messages in order from 0, so the nth frame sent is seq n).
final class SendLog: Sendable {
    private let sent = Mutex<[ContinuousClock.Instant]>([])

    func record(_ instant: ContinuousClock.Instant) { sent.withLock { $0.append(instant) } }

    func sentAt(seq: UInt64) -> ContinuousClock.Instant? {
        sent.withLock { Int(seq) < $0.count ? $0[Int(seq)] : nil }
    }

    var count: Int { sent.withLock { $0.count } }
}

enum Percentile {
    static func of(_ values: [Double], _ p: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p + 0.5))]
    }
}

/// When the measured window began; frames before it are warm-up.
final class MeasureStart: Sendable {
    private let start = Mutex<ContinuousClock.Instant?>(nil)
    func begin(at instant: ContinuousClock.Instant) { start.withLock { $0 = instant } }
    func isMeasuring(at instant: ContinuousClock.Instant) -> Bool { start.withLock { $0.map { instant >= $0 } ?? false } }
}
