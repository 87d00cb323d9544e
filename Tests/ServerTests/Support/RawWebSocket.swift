import NIOCore
import NIOPosix
import Synchronization
import TestFixtures

/// A hand-rolled WebSocket client over a plain NIO socket, for what a
/// well-behaved client library will not do: vanish without a close frame,
/// or stop in the middle of a message.
final class RawWebSocket: Sendable {
    let channelRef: any Channel
    /// Bytes received and not yet taken by `readSome`.
    final class Inbox: Sendable {
        let bytes = Mutex(ByteBuffer())
        let closed = Mutex(false)
    }
    private let inbox = Inbox()
    /// Wakes `readSome` when bytes arrive or the connection ends.
    private let arrivals = ChangeSignal()
    private let reader: Task<Void, Never>
    /// Ends a hold of a connection the server closed (`holdingOpen`).
    private let release: AsyncStream<Void>.Continuation

    /// `holdingOpen`: when the server closes its side, keep ours open (until
    /// `drop`), as a client that never answers a Close would.
    private init(channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>, holdingOpen: Bool = false) {
        self.channelRef = channel.channel
        let (held, release) = AsyncStream.makeStream(of: Void.self)
        self.release = release
        let inbox = self.inbox, arrivals = self.arrivals
        // One reader for the connection's life, collecting what arrives.
        // `executeThenClose` finishes the async channel's writer when the
        // reading ends; dropping an unfinished NIOAsyncWriter trips NIO's
        // debug assertion (it crashed a CI run when the server closed first).
        self.reader = Task {
            try? await channel.executeThenClose { inbound, _ in
                for try await chunk in inbound {
                    inbox.bytes.withLock { buffer in
                        var chunk = chunk
                        buffer.writeBuffer(&chunk)
                    }
                    arrivals.changed()
                }
                guard holdingOpen else { return }
                inbox.closed.withLock { $0 = true }
                arrivals.changed()
                for await _ in held {}  // until `drop`
            }
            inbox.closed.withLock { $0 = true }
            arrivals.changed()
        }
    }

    /// A plain TCP connection, for an HTTP exchange read as it streams (an MJPEG response).
    static func plain(port: Int) async throws -> RawWebSocket {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        return RawWebSocket(channel: channel)
    }

    /// Sends bytes as they are.
    func send(raw: String) async throws {
        try await write(ByteBuffer(string: raw))
    }

    func sendBytes(_ bytes: ByteBuffer) async throws {
        try await write(bytes)
    }

    /// Everything received so far and until `condition` holds for it (or 5 s pass).
    func read(until condition: (ByteBuffer) -> Bool) async throws -> ByteBuffer {
        var all = ByteBuffer()
        while !condition(all) {
            var more = try await readSome()
            guard more.readableBytes > 0 else { break }
            all.writeBuffer(&more)
        }
        return all
    }

    /// Upgrades a connection from `localAddress` (any 127.x address, to be
    /// another client) with `headers` added to the request.
    static func connect(port: Int, path: String, from localAddress: String? = nil,
                        headers: [String: String] = [:], holdingOpen: Bool = false) async throws -> RawWebSocket {
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: holdingOpen)
        if let localAddress { bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: localAddress, port: 0)) }
        let channel = try await bootstrap
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let socket = RawWebSocket(channel: channel, holdingOpen: holdingOpen)
        let extra = headers.map { "\($0): \($1)\r\n" }.joined()
        try await socket.write(ByteBuffer(string: "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" + extra + "\r\n"))
        var head = try await socket.readSome()
        guard String(buffer: head).hasPrefix("HTTP/1.1 101") else { throw Refused(response: String(buffer: head)) }
        // The first frames may have come in the same read as the response.
        if let end = head.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) {
            head.moveReaderIndex(forwardBy: end.upperBound - head.readerIndex)
            socket.unparsed.bytes.withLock { _ = $0.writeBuffer(&head) }
        }
        return socket
    }

    struct Refused: Error { let response: String }

    private func write(_ buffer: ByteBuffer) async throws {
        try await channelRef.writeAndFlush(buffer)
    }

    /// Sends one masked text frame.
    func send(text: String) async throws {
        try await write(Self.maskedFrame(firstByte: 0x81, payload: Array(text.utf8)))
    }

    /// Sends one masked, non-final fragment of a text message: the first
    /// fragment (`first`) or a continuation.
    func sendFragment(_ payload: [UInt8], first: Bool) async throws {
        try await write(Self.maskedFrame(firstByte: first ? 0x01 : 0x00, payload: payload))
    }

    /// A client frame: FIN/opcode byte, length, mask, masked payload.
    static func maskedFrame(firstByte: UInt8, payload: [UInt8]) -> ByteBuffer {
        var frame = ByteBuffer()
        frame.writeInteger(firstByte)
        if payload.count < 126 {
            frame.writeInteger(UInt8(0x80 | payload.count))
        } else if payload.count <= 0xFFFF {
            frame.writeInteger(UInt8(0x80 | 126))
            frame.writeInteger(UInt16(payload.count))
        } else {
            frame.writeInteger(UInt8(0x80 | 127))
            frame.writeInteger(UInt64(payload.count))
        }
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        frame.writeBytes(mask)
        frame.writeBytes(payload.enumerated().map { $0.element ^ mask[$0.offset % 4] })
        return frame
    }

    /// Reads whatever arrives next (at least one byte).
    @discardableResult
    func readSome() async throws -> ByteBuffer {
        var taken: ByteBuffer?
        _ = await arrivals.wait(timeout: TestDeadline.event) {
            taken = inbox.bytes.withLock { buffer -> ByteBuffer? in
                guard buffer.readableBytes > 0 else { return nil }
                defer { buffer.clear() }
                return buffer
            }
            return taken != nil || inbox.closed.withLock { $0 }
        }
        return taken ?? ByteBuffer()
    }

    /// One server frame (unmasked, unfragmented as the relay sends them):
    /// its opcode and payload, taken from what has arrived, waiting for more
    /// as needed (up to `TestDeadline.event`).
    func readFrame() async throws -> (opcode: UInt8, payload: ByteBuffer) {
        while true {
            if let frame = unparsed.bytes.withLock({ Self.parseFrame(&$0) }) { return frame }
            let more = try await readSome()
            guard more.readableBytes > 0 else { throw NoFrame() }
            unparsed.bytes.withLock { buffer in
                var more = more
                buffer.writeBuffer(&more)
            }
        }
    }

    struct NoFrame: Error {}
    private let unparsed = Inbox()

    private static func parseFrame(_ buffer: inout ByteBuffer) -> (opcode: UInt8, payload: ByteBuffer)? {
        var view = buffer
        guard let first = view.readInteger(as: UInt8.self), let second = view.readInteger(as: UInt8.self) else { return nil }
        var length = Int(second & 0x7F)
        if length == 126 {
            guard let n = view.readInteger(as: UInt16.self) else { return nil }
            length = Int(n)
        } else if length == 127 {
            guard let n = view.readInteger(as: UInt64.self) else { return nil }
            length = Int(n)
        }
        guard let payload = view.readSlice(length: length) else { return nil }
        buffer = view
        return (first & 0x0F, payload)
    }

    /// Sends a masked Pong with `payload`.
    func sendPong(_ payload: [UInt8]) async throws {
        try await write(Self.maskedFrame(firstByte: 0x8A, payload: payload))
    }

    /// Whether the server has closed the connection (everything it sent has arrived).
    var isClosed: Bool { inbox.closed.withLock { $0 } }

    /// Waits until the server closes the connection; false if it has not within `timeout`.
    func waitUntilClosed(timeout: Duration = TestDeadline.event) async -> Bool {
        await arrivals.wait(timeout: timeout) { isClosed }
    }

    /// Closes the TCP connection with no WebSocket close frame.
    func drop() async {
        release.finish()
        try? await channelRef.close()
        reader.cancel()
    }
}
