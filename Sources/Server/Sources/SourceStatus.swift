import Foundation
import Pipeline

/// Where a pulled camera stands, as `/api/streams`, `/admin` and `/readyz`
/// tell it: an operator sees a lost camera, why, and when it is tried next,
/// not merely a stream that is missing.
struct SourceStatus: Sendable {
    enum State: String, Sendable {
        /// Connecting, or connected and waiting for the first picture.
        case connecting
        case pulling
        /// It went away; `retryAt` says when it is tried again.
        case lost
        /// Another node pulls it (`holder`), or who does cannot be known now (`lastError` says why).
        case standby
        /// Removed from the file, or the relay is stopping.
        case stopped
    }

    let streamID: String
    let url: String
    var state = State.connecting
    var since = Date()
    var lastError: String?
    var retryAt: Date?
    var holder: String?
    /// Connections tried since the last one that brought pictures.
    var attempts = 0
    /// Pictures read from the camera since the relay started pulling it, and how many its pipeline refused.
    var frames = 0
    var refused = 0

    init(source: PulledSource) {
        streamID = source.streamID
        url = source.url
    }

    private mutating func enter(_ next: State) {
        if state != next { since = Date() }
        state = next
    }

    mutating func connecting(attempt: Int) {
        if state != .lost { enter(.connecting) }
        attempts = attempt
        holder = nil
        retryAt = nil
    }

    mutating func pulling() {
        enter(.pulling)
        lastError = nil
        retryAt = nil
    }

    mutating func lost(reason: String, retryIn wait: Duration) {
        enter(.lost)
        lastError = reason
        retryAt = Date().addingTimeInterval(wait.seconds)
    }

    mutating func standby(holder: String?, reason: String? = nil) {
        enter(.standby)
        self.holder = holder
        lastError = reason
        retryAt = nil
    }

    mutating func stopped() {
        enter(.stopped)
        retryAt = nil
    }

    func json(formatter: ISO8601DateFormatter) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("url", .string(url)), ("state", .string(state.rawValue)), ("since", .string(formatter.string(from: since))),
            ("attempts", .number(Double(attempts))), ("frames", .number(Double(frames))), ("refused", .number(Double(refused))),
        ]
        if let holder { members.append(("node", .string(holder))) }
        if let lastError { members.append(("last_error", .string(lastError))) }
        if let retryAt { members.append(("retry_at", .string(formatter.string(from: retryAt)))) }
        return .object(members)
    }
}
