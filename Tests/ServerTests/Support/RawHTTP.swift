import NIOCore
import Foundation
import NIOPosix
import NIOSSL
@testable import Pipeline
import TestFixtures

/// Plain HTTP/1.1 over a NIO socket: GETs for the JSON API and raw upgrade
/// requests whose refusal status a WebSocket client would hide.
enum RawHTTP {
    struct Response {
        let status: Int
        let headers: [String: String]
        let body: ByteBuffer
        var text: String { String(buffer: body) }
        /// The sentence of a refusal's JSON body, `{"error": code, "reason": sentence}`.
        var reason: String? { (try? JSONParser.parse(text))?["reason"]?.stringValue }
        /// The code of a refusal's JSON body.
        var errorCode: String? { (try? JSONParser.parse(text))?["error"]?.stringValue }
    }

    static func get(host: String = "127.0.0.1", port: Int, path: String, upgrade: Bool = false, headers extra: [String: String] = [:]) async throws -> Response {
        var request = "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
        if upgrade {
            request = "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        }
        for (k, v) in extra { request += "\(k): \(v)\r\n" }
        request += "\r\n"
        let raw = try await exchange(host: host, port: port, send: request)
        return parse(raw)
    }

    /// With `tls`, over TLS without verifying the certificate (the TLS tests check certificates with WebSocket clients).
    static func post(host: String = "127.0.0.1", port: Int, path: String, body: String = "", headers extra: [String: String] = [:],
                     tls: Bool = false) async throws -> Response {
        var request = "POST \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n"
        for (k, v) in extra { request += "\(k): \(v)\r\n" }
        return parse(try await exchange(host: host, port: port, send: request + "\r\n" + body, tls: tls))
    }

    /// Writes `send`, then reads until one response is complete (or, with
    /// `untilComplete: false`, until the server closes). The 20 s limit only
    /// ends a test that is failing anyway: a loaded machine once took over
    /// 2 s to answer, and an empty answer then read as a refusal.
    static func exchange(host: String = "127.0.0.1", port: Int, send: String, untilComplete: Bool = true, tls: Bool = false) async throws -> ByteBuffer {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        let context = tls ? try NIOSSLContext(configuration: configuration) : nil
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let context { try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil)) }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: send))
            // Kept outside the reader so what arrived before a timeout is not lost.
            let received = RawWebSocket.Inbox()
            let ended = ChangeSignal()
            await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    defer {
                        received.closed.withLock { $0 = true }
                        ended.changed()
                    }
                    for try await chunk in inbound {
                        let complete = received.bytes.withLock { buffer in
                            var chunk = chunk
                            buffer.writeBuffer(&chunk)
                            return Self.isComplete(buffer)
                        }
                        if untilComplete, complete { break }
                    }
                }
                // The first to come: the response, or the server's close; the deadline ends only a hung exchange.
                _ = await ended.wait(timeout: .seconds(20)) { received.closed.withLock { $0 } }
                group.cancelAll()
            }
            return received.bytes.withLock { $0 }
        }
    }

    /// A response whose head is in and whose body has its Content-Length.
    static func isComplete(_ buffer: ByteBuffer) -> Bool {
        let bytes = Array(buffer.readableBytesView)
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = (0..<max(0, bytes.count - 3)).first(where: { Array(bytes[$0..<$0 + 4]) == separator }) else { return false }
        let head = String(decoding: bytes[..<end], as: UTF8.self).lowercased()
        guard let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
              let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
        else { return head.hasPrefix("http/1.1 101") }
        return bytes.count - (end + 4) >= length
    }

    static func parse(_ raw: ByteBuffer) -> Response {
        let bytes = Array(raw.readableBytesView)
        let separator: [UInt8] = [13, 10, 13, 10]
        let headEnd = (0..<max(0, bytes.count - 3)).first { Array(bytes[$0..<$0 + 4]) == separator } ?? bytes.count
        let head = String(decoding: bytes[..<headEnd], as: UTF8.self)
        let lines = head.split(separator: "\r\n")
        let status = lines.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        let body = ByteBuffer(bytes: bytes[min(bytes.count, headEnd + 4)...])
        return Response(status: status, headers: headers, body: body)
    }
}
