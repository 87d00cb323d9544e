import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
import TestFixtures

/// An IP camera on a loopback port, as the relay's `"sources"` meet them:
/// `GET /video.mjpg` answers `multipart/x-mixed-replace` and writes a part
/// whenever the test calls `send`, with no chunked encoding and no end
/// (as Axis, Hikvision and mjpg-streamer do); `GET /snapshot.jpg` answers
/// the latest picture. It can ask for Basic credentials, go away (`stop`)
/// and come back on the same port (`start`).
final class FakeIPCamera: Sendable {
    struct State {
        var port = 0
        var server: (any Channel)?
        var streaming: [ObjectIdentifier: any Channel] = [:]
        /// Every request's head, in order.
        var requests: [String] = []
        /// Most clients streaming at one time.
        var mostAtOnce = 0
        var latest: ByteBuffer?
    }

    let requiredAuthorization: String?
    private let state = NIOLockedValueBox(State())
    /// Wakes waits at each request, connection and close.
    private let changes = ChangeSignal()

    /// `credentials`: `user:password` the camera insists on.
    init(credentials: String? = nil) {
        requiredAuthorization = credentials.map { "Basic " + Data($0.utf8).base64EncodedString() }
    }

    var port: Int { state.withLockedValue { $0.port } }
    var mjpegURL: String { "http://127.0.0.1:\(port)/video.mjpg" }
    var snapshotURL: String { "http://127.0.0.1:\(port)/snapshot.jpg" }
    var streamingClients: Int { state.withLockedValue { $0.streaming.count } }
    var mostAtOnce: Int { state.withLockedValue { $0.mostAtOnce } }
    var requests: [String] { state.withLockedValue { $0.requests } }

    /// Listens (again, on the same port once it has one).
    func start() async throws {
        let port = port
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in channel.pipeline.addHandler(Connection(camera: self)) }
            .bind(host: "127.0.0.1", port: port).get()
        changed { $0.server = channel; $0.port = channel.localAddress?.port ?? port }
    }

    /// Goes away: stops listening and closes every connection.
    func stop() async {
        let (server, clients) = state.withLockedValue { s in
            defer { s.server = nil; s.streaming = [:] }
            return (s.server, Array(s.streaming.values))
        }
        try? await server?.close()
        for client in clients { try? await client.close() }
        changed { _ in }
    }

    /// Writes a picture to every streaming client, and keeps it for snapshots.
    func send(_ jpeg: ByteBuffer) {
        let clients = state.withLockedValue { s in
            s.latest = jpeg
            return Array(s.streaming.values)
        }
        var part = ByteBuffer(string: "--myboundary\r\nContent-Type: image/jpeg\r\nContent-Length: \(jpeg.readableBytes)\r\n\r\n")
        part.writeImmutableBuffer(jpeg)
        part.writeString("\r\n")
        for client in clients { client.writeAndFlush(part, promise: nil) }
    }

    /// Waits until `condition` holds of the camera's state, woken by each change; fails after `timeout`.
    func waitUntil(_ what: String, timeout: Duration = TestDeadline.event, _ condition: @escaping @Sendable (State) -> Bool) async throws {
        if await changes.wait(timeout: timeout, until: { state.withLockedValue { condition($0) } }) { return }
        Issue.record("camera: timed out waiting for \(what); requests: \(requests.count), streaming: \(streamingClients)")
        throw CameraTimedOut()
    }

    struct CameraTimedOut: Error {}

    fileprivate func changed(_ update: (inout State) -> Void) {
        state.withLockedValue { s in
            update(&s)
            s.mostAtOnce = max(s.mostAtOnce, s.streaming.count)
        }
        changes.changed()
    }

    /// One client: reads its request head, then answers it.
    private final class Connection: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let camera: FakeIPCamera
        var head = ""
        var answered = false

        init(camera: FakeIPCamera) { self.camera = camera }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !answered else { return }
            head += String(buffer: unwrapInboundIn(data))
            guard head.contains("\r\n\r\n") else { return }
            answered = true
            let request = head
            camera.changed { $0.requests.append(request) }
            let lines = request.components(separatedBy: "\r\n")
            let authorization = lines.first { $0.lowercased().hasPrefix("authorization:") }
                .map { String($0.dropFirst("authorization:".count)).trimmingCharacters(in: .whitespaces) }
            if let required = camera.requiredAuthorization, authorization != required {
                respond(context, "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"camera\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            }
            let path = lines.first?.split(separator: " ").dropFirst().first ?? ""
            switch path {
            case "/video.mjpg":
                let channel = context.channel
                let answer = ByteBuffer(string: "HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary=myboundary\r\nCache-Control: no-cache\r\n\r\n")
                context.writeAndFlush(wrapOutboundOut(answer), promise: nil)
                let id = ObjectIdentifier(channel)
                camera.changed { $0.streaming[id] = channel }
                let camera = camera
                channel.closeFuture.whenComplete { _ in camera.changed { $0.streaming[id] = nil } }
            case "/snapshot.jpg":
                guard let jpeg = camera.state.withLockedValue({ $0.latest }) else {
                    respond(context, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    return
                }
                var answer = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: \(jpeg.readableBytes)\r\nConnection: close\r\n\r\n")
                answer.writeImmutableBuffer(jpeg)
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(answer)).whenComplete { _ in channel.close(promise: nil) }
            default:
                respond(context, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            }
        }

        private func respond(_ context: ChannelHandlerContext, _ text: String) {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
