import Foundation
import HummingbirdWSClient
import NIOSSL
import Logging
import NIOCore
@testable import Pipeline
import Synchronization
import Testing
import TestFixtures

/// A real WebSocket client (HummingbirdWSClient) that records everything it
/// receives and sends what the test asks, for asserting the wire contract.
///
/// Each text message is parsed once, when it arrives, and every wait is
/// woken by the message (or the close) it waits for: no polling, so a
/// waiting test adds no load of its own and ends the moment its event comes.
final class TestSocket: Sendable {
    enum Outgoing: Sendable { case text(String), binary(ByteBuffer), close }

    private struct State {
        var messages: [WebSocketMessage] = []
        /// Text messages as JSON, parsed once on arrival.
        var parsed: [JSONValue] = []
        /// When each message was read (ms since epoch), for frame ages.
        var readAt: [Int64] = []
        var connected = false
        var finished = false
        var error: (any Error)?
        /// The server's close frame: its code and reason.
        var closeFrame: (code: UInt16, reason: String?)?
    }

    private let state = Mutex(State())
    /// Wakes waits on each message, on the upgrade and on the end.
    private let changes = ChangeSignal()
    private let outbox: AsyncStream<Outgoing>.Continuation
    private let task = Mutex<Task<Void, Never>?>(nil)
    let url: String

    private init(url: String, outbox: AsyncStream<Outgoing>.Continuation) {
        self.url = url
        self.outbox = outbox
    }

    /// Connects; throws if the upgrade is refused. A socket made with
    /// `reading: false` never reads, like a frozen browser tab.
    /// `readDelay` makes a slow viewer: it pauses after each message it reads.
    /// With `answerPings`, it answers the server's pings as a dashboard does.
    static func connect(_ url: String, reading: Bool = true, readDelay: Duration? = nil, answerPings: Bool = false,
                        tls: TLSConfiguration? = nil) async throws -> TestSocket {
        let (outgoing, continuation) = AsyncStream.makeStream(of: Outgoing.self)
        let socket = TestSocket(url: url, outbox: continuation)
        var configuration = WebSocketClientConfiguration()
        configuration.maxFrameSize = 32 << 20
        configuration.autoPing = .disabled
        let logger = Logger(label: "test-client") { _ in SwiftLogNoOpLogHandler() }
        let t = Task {
            do {
                let closeFrame = try await WebSocketClient.connect(url: url, configuration: configuration, tlsConfiguration: tls, logger: logger) { inbound, outbound, _ in
                    socket.state.withLock { $0.connected = true }
                    socket.changes.changed()
                    await withTaskGroup(of: Void.self) { group in
                        group.addTask {
                            for await message in outgoing {
                                switch message {
                                case .text(let text): try? await outbound.write(.text(text))
                                case .binary(let bytes): try? await outbound.write(.binary(bytes))
                                case .close:
                                    try? await outbound.close(.normalClosure, reason: nil)
                                    return
                                }
                            }
                        }
                        if reading {
                            do {
                                for try await message in inbound.messages(maxSize: 32 << 20) {
                                    let now = Date().millisecondsSince1970
                                    let json: JSONValue? = if case .text(let t) = message { try? JSONParser.parse(t) } else { nil }
                                    // Answered before anyone waiting sees the ping, so what a test sends next follows the pong.
                                    if answerPings, message == .text(#"{"type":"ping"}"#) { socket.send(#"{"type":"pong"}"#) }
                                    socket.state.withLock { s in
                                        s.messages.append(message)
                                        s.readAt.append(now)
                                        if let json { s.parsed.append(json) }
                                    }
                                    socket.changes.changed()
                                    if let readDelay { try await Task.sleep(for: readDelay) }
                                }
                            } catch {}
                            group.cancelAll()
                        }
                        await group.waitForAll()
                    }
                }
                if let closeFrame {
                    let code: UInt16 = switch closeFrame.closeCode {
                    case .unknown(let n): n
                    case .normalClosure: 1000
                    case .goingAway: 1001
                    case .policyViolation: 1008
                    default: 0
                    }
                    socket.state.withLock { $0.closeFrame = (code, closeFrame.reason) }
                }
            } catch {
                socket.state.withLock { $0.error = error }
            }
            socket.state.withLock { $0.finished = true }
            socket.changes.changed()
        }
        socket.task.withLock { $0 = t }
        // Woken when the upgrade is done or refused.
        let upgraded: Void? = try? await socket.until("the upgrade", timeout: TestDeadline.event, recording: false) {
            socket.state.withLock { $0.connected || $0.finished }
        }
        let s = socket.state.withLock { ($0.connected, $0.error) }
        if upgraded != nil, s.0 { return socket }
        throw s.1 ?? UpgradeRefused(url: url)
    }

    struct UpgradeRefused: Error { let url: String }

    func send(_ text: String) { outbox.yield(.text(text)) }
    func send(_ bytes: ByteBuffer) { outbox.yield(.binary(bytes)) }

    /// Sends a close frame and waits for the connection to end.
    func close() async {
        outbox.yield(.close)
        outbox.finish()
        _ = await task.withLock { $0 }?.value
    }

    /// Stops the client task without waiting for a close handshake.
    func abort() async {
        task.withLock { $0 }?.cancel()
        outbox.finish()
        _ = await task.withLock { $0 }?.value
    }

    var messages: [WebSocketMessage] { state.withLock { $0.messages } }
    /// The code and reason of the server's close frame, once it came.
    var closeFrame: (code: UInt16, reason: String?)? { state.withLock { $0.closeFrame } }
    var isFinished: Bool { state.withLock { $0.finished } }

    /// Text messages parsed as JSON.
    var json: [JSONValue] { state.withLock { $0.parsed } }

    /// JSON messages of one `type`.
    func json(type: String) -> [JSONValue] { json.filter { $0["type"] == .string(type) } }

    /// Binary frames decoded as (header, jpeg bytes).
    var binaryFrames: [(header: JSONValue, jpeg: ByteBuffer)] {
        messages.compactMap { message in
            guard case .binary(var bytes) = message, let n = bytes.readInteger(endianness: .big, as: UInt16.self),
                  let header = bytes.readString(length: Int(n)), let json = try? JSONParser.parse(header)
            else { return nil }
            return (json, bytes)
        }
    }

    /// The header of the last binary frame received, decoded alone (cheap to ask on every message).
    var lastBinaryHeader: JSONValue? {
        guard let last = state.withLock({ $0.messages.last(where: { if case .binary = $0 { true } else { false } }) }),
              case .binary(var bytes) = last, let n = bytes.readInteger(endianness: .big, as: UInt16.self),
              let header = bytes.readString(length: Int(n)) else { return nil }
        return try? JSONParser.parse(header)
    }

    /// Each binary frame's age when it was read: read time − its `received_at` (ms).
    var binaryFrameAges: [Int64] {
        let (messages, readAt) = state.withLock { ($0.messages, $0.readAt) }
        return zip(messages, readAt).compactMap { message, at in
            guard case .binary(var bytes) = message, let n = bytes.readInteger(endianness: .big, as: UInt16.self),
                  let header = bytes.readString(length: Int(n)), let json = try? JSONParser.parse(header),
                  let receivedAt = json["received_at"]?.numberValue else { return nil }
            return at - Int64(receivedAt)
        }
    }

    /// Waits until `condition` holds of what this socket received, woken by
    /// each message and by the end of the connection; fails after `timeout`.
    /// `recording`: a timeout is the test's failure (not when the caller handles it).
    private func until(_ what: String, timeout: Duration, recording: Bool = true, _ condition: () -> Bool) async throws {
        if await changes.wait(timeout: timeout, until: condition) { return }
        if recording { Issue.record("timed out waiting for \(what) on \(url); got \(json.map { $0.jsonText.prefix(120) })") }
        throw RelayHandle.TimedOut(what: what)
    }

    /// Proves that nothing queued for this socket before now is still on its
    /// way: the relay answers a `ping` after everything it queued earlier.
    func barrier() async throws {
        let before = json(type: "pong").count
        send(#"{"type":"ping"}"#)
        try await eventually("pong") { json(type: "pong").count > before }
    }

    /// Waits for a JSON message matching `predicate`.
    @discardableResult
    func waitFor(_ what: String, timeout: Duration = TestDeadline.event, _ predicate: (JSONValue) -> Bool) async throws -> JSONValue {
        var found: JSONValue?
        try await until(what, timeout: timeout) {
            found = json.first(where: predicate)
            return found != nil
        }
        return found!
    }

    @discardableResult
    func waitFor(type: String, stream: String? = nil, timeout: Duration = TestDeadline.event) async throws -> JSONValue {
        try await waitFor("\(type) \(stream ?? "")", timeout: timeout) {
            $0["type"] == .string(type) && (stream == nil || $0["stream_id"] == .string(stream!))
        }
    }

    /// Waits until `condition` holds of what this socket received.
    func eventually(_ what: String, timeout: Duration = TestDeadline.event, _ condition: () -> Bool) async throws {
        try await until(what, timeout: timeout, condition)
    }

    func waitUntilFinished(timeout: Duration = TestDeadline.event) async throws {
        try await until("close", timeout: timeout) { isFinished }
    }
}
