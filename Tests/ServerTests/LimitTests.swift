@testable import Access
import Foundation
@testable import FramepipeServer
import NIOCore
import NIOPosix
@testable import Pipeline
import Testing

/// Each limit trips, is counted in `framepipe_limit_hits_total`, and the
/// relay goes on serving everyone else.
@Suite("Limits", .timeLimit(.minutes(1)))
struct LimitTests {
    static func limited(clock: any RelayClock = SystemRelayClock(), _ change: @escaping (inout RelayLimits) -> Void) -> RelayConfiguration {
        .test { c in
            change(&c.limits)
            c.clock = clock
        }
    }

    static func limitHits(_ relay: RelayHandle, _ limit: String, token: String? = nil) async throws -> Int {
        let response = try await RawHTTP.get(port: relay.port, path: "/metrics", headers: token.map { ["Authorization": "Bearer \($0)"] } ?? [:])
        // A count read from anything but the metrics page would read as 0.
        guard response.status == 200 else { throw MetricsUnread(status: response.status, body: response.text) }
        let text = response.text
        let prefix = #"framepipe_limit_hits_total{limit="\#(limit)"} "#
        return text.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Int($0.dropFirst(prefix.count)) } ?? 0
    }

    struct MetricsUnread: Error { let status: Int; let body: String }

    @Test func streamsBeyondTheLimitAre503AndTheOthersKeepStreaming() async throws {
        try await withRelay(Self.limited { $0.maxStreams = 2 }) { relay in
            let viewer = try await relay.viewer("format=binary")
            let a = try await relay.streamer("a")
            let b = try await relay.streamer("b")
            a.send(TestFrames.jpeg(0)); b.send(TestFrames.jpeg(0))
            try await relay.eventually("two live") { try await relay.api("/api/streams").arrayValue?.count == 2 }
            let third = try await RawHTTP.get(port: relay.port, path: "/ws/stream/c", upgrade: true)
            #expect(third.status == 503)
            #expect(third.reason == "the relay has its maximum of 2 live streams")
            // Replacing a live stream is not a new stream.
            let a2 = try await relay.streamer("a")
            for i in 1...3 { a2.send(TestFrames.jpeg(i)); b.send(TestFrames.jpeg(i)) }
            // Latest wins: the newest frame of each stream is what must arrive (seq counts on across the replacement).
            try await relay.eventually("frames keep flowing") {
                viewer.binaryFrames.contains { $0.header["stream_id"] == .string("a") && $0.header["seq"] == .number(3) }
                    && viewer.binaryFrames.contains { $0.header["stream_id"] == .string("b") && $0.header["seq"] == .number(3) }
            }
            #expect(try await Self.limitHits(relay, "streams") == 1)
            await a2.close(); await b.close(); await viewer.close()
        }
    }

    @Test func viewersBeyondTheTotalAre503AndPerTokenAre429() async throws {
        let config = RelayConfiguration.test { c in
            c.auth = TestTokens.settings
            c.limits.maxViewers = 3
            c.limits.maxViewersPerToken = 2
        }
        let one = try await TestTokens.hs256(.viewer, ["*"])
        let two = try await TestTokens.hs256(.viewer, ["*"])
        try await withRelay(config) { relay in
            let v1 = try await relay.viewer("token=\(one)")
            let v2 = try await relay.viewer("token=\(one)")
            let perToken = try await RawHTTP.get(port: relay.port, path: "/ws/viewer?token=\(one)", upgrade: true)
            #expect(perToken.status == 429)
            #expect(perToken.reason == "this token already has 2 viewers connected")
            let v3 = try await relay.viewer("token=\(two)")
            let total = try await RawHTTP.get(port: relay.port, path: "/ws/viewer?token=\(two)", upgrade: true)
            #expect(total.status == 503)
            // One leaves; its place is free again.
            await v1.close()
            try await relay.eventually("a viewer slot frees up") {
                try await RawHTTP.get(port: relay.port, path: "/ws/viewer?token=\(one)", upgrade: true).status == 101
            }
            #expect(try await Self.limitHits(relay, "viewers_per_token", token: one) == 1)
            #expect(try await Self.limitHits(relay, "viewers", token: one) >= 1)
            await v2.close(); await v3.close()
        }
    }

    /// Upgrades that arrive together all pass the gate's check before any
    /// of them is added; the limit holds where viewers and streams are
    /// added (the ones past it are closed with 4013 and the reason).
    @Test func aBurstOfUpgradesNeverPassesTheViewerOrStreamLimit() async throws {
        try await withRelay(Self.limited { $0.maxViewers = 2; $0.maxStreams = 2 }) { relay in
            let viewers = await withTaskGroup(of: TestSocket?.self) { group in
                for _ in 0..<12 { group.addTask { try? await TestSocket.connect("\(relay.ws)/ws/viewer") } }
                return await group.reduce(into: [TestSocket]()) { if let socket = $1 { $0.append(socket) } }
            }
            let streamers = await withTaskGroup(of: TestSocket?.self) { group in
                for i in 0..<12 { group.addTask { try? await TestSocket.connect("\(relay.ws)/ws/stream/s\(i)") } }
                return await group.reduce(into: [TestSocket]()) { if let socket = $1 { $0.append(socket) } }
            }
            // Every upgrade was answered one way or the other: added, refused at the gate, or refused after it.
            try await relay.eventually("every upgrade decided") {
                let refusedAfter = relay.log.all.count { $0.message.hasSuffix("refused after the upgrade: a limit is reached") }
                let added = relay.log.all.count { $0.message == "viewer connected" || $0.message == "streamer connected" }
                return added + refusedAfter == viewers.count + streamers.count
            }
            #expect(try await relay.api("/api/viewers").arrayValue?.count == 2)
            try await relay.eventually("two streams registered") {
                try await RawHTTP.get(port: relay.port, path: "/metrics").text.contains(#"framepipe_open_connections{kind="streamer"} 2"#)
            }
            for line in relay.log.all where line.message.hasSuffix("refused after the upgrade: a limit is reached") {
                #expect(line.metadata["reason"].map { "\($0)".hasPrefix("the relay has its maximum of 2") } == true)
            }
            for socket in viewers + streamers { await socket.abort() }
        }
    }

    @Test func connectionsBeyondThePerAddressLimitAreClosedAtOnce() async throws {
        try await withRelay(Self.limited { $0.maxConnectionsPerAddress = 3 }) { relay in
            var held: [any Channel] = []
            for _ in 0..<3 { held.append(try await Self.connectAccepted(relay.port)) }
            let fourth = try await Self.connect(relay.port)
            // The relay closes it without a word (the client may see a reset).
            _ = try? await fourth.closeFuture.get()
            #expect(!fourth.isActive)
            // `try?`: on a slow run the relay's handshake timeout may have closed it already.
            try? await held.removeFirst().close()
            try await relay.eventually("a connection slot frees up") {
                (try? await RawHTTP.get(port: relay.port, path: "/healthz").status) == 200
            }
            // Reading /metrics takes a connection too: with two still held and the probe's
            // close not yet seen by a loaded relay, it could itself be refused and read as 0.
            for channel in held { try? await channel.close() }
            try await relay.eventually("the refusal counted") {
                (try? await Self.limitHits(relay, "connections_per_address")) ?? 0 >= 1
            }
        }
    }

    @Test func upgradesFasterThanTheRateAre429() async throws {
        // Half an upgrade a second (a burst of one), on the relay's clock, which stands
        // still here: the second upgrade is too fast however slow this machine is today.
        try await withRelay(Self.limited(clock: ManualRelayClock()) { $0.upgradesPerSecondPerAddress = 0.5 }) { relay in
            #expect(try await RawHTTP.get(port: relay.port, path: "/ws/viewer", upgrade: true).status == 101)
            let refused = try await RawHTTP.get(port: relay.port, path: "/ws/viewer", upgrade: true)
            #expect(refused.status == 429)
            #expect(refused.reason == "too many WebSocket upgrades from 127.0.0.1; slow down")
            // Plain HTTP is not an upgrade and is not counted.
            #expect(try await RawHTTP.get(port: relay.port, path: "/healthz").status == 200)
            #expect(try await Self.limitHits(relay, "upgrade_rate") == 1)
            // That the bucket refills is AddressLedgerTests' to show, on a clock it moves itself.
        }
    }

    @Test func aClientThatNeverFinishesItsHeadersIsCutOff() async throws {
        // The timeout counts on the relay's clock, which moves only when this test
        // moves it: no connection here (the viewer's, /metrics') is cut because
        // the machine is slow, and the slow client is cut at 7 s, not before.
        let clock = ManualRelayClock()
        let deadline = clock.now.addingTimeInterval(7)
        try await withRelay(Self.limited(clock: clock) { $0.handshakeTimeout = .seconds(7) }) { relay in
            let slow = try await Self.connect(relay.port)
            // Slowloris: a request line and one header, then nothing.
            try await slow.writeAndFlush(ByteBuffer(string: "GET /ws/viewer HTTP/1.1\r\nHost: 127.0.0.1\r\n"))
            try await clock.waitForSleeper(until: deadline)
            let viewer = try await relay.viewer()
            clock.advance(by: .milliseconds(6999))
            // Not yet: its timer still waits for 7 s (an advance wakes what is due before it returns).
            #expect(clock.isWaiting(until: deadline))
            #expect(try await Self.limitHits(relay, "handshake_timeout") == 0)
            clock.advance(by: .milliseconds(1))
            _ = try await slow.closeFuture.get()
            try await relay.log.waitFor("connection closed: no request within the handshake timeout")
            // One: the viewer finished its handshake and /metrics its request before the clock moved.
            #expect(try await Self.limitHits(relay, "handshake_timeout") == 1)
            try await viewer.barrier()
            #expect(!viewer.isFinished)
            await viewer.close()
        }
    }

    @Test func aStreamerFloodingMessagesHasTheExcessDropped() async throws {
        // The limit refills on the relay's clock, which stands still here: exactly the burst (10) passes.
        try await withRelay(Self.limited(clock: ManualRelayClock()) { $0.maxStreamMessagesPerSecond = 10 }) { relay in
            let viewer = try await relay.viewer("format=binary")
            let streamer = try await relay.streamer("flood")
            for i in 0..<200 { streamer.send(TestFrames.jpeg(i)) }
            // Messages are taken in order: once the last is counted, the ten before were handed on.
            try await relay.eventually("the excess is counted") { try await Self.limitHits(relay, "stream_messages") == 190 }
            try await viewer.barrier()
            let seqs = viewer.binaryFrames.compactMap { $0.header["seq"]?.numberValue }
            #expect(!seqs.isEmpty && seqs.count <= 10 && seqs.last == 9, "latest wins among the ten let through: \(seqs)")
            await streamer.close(); await viewer.close()
        }
    }

    @Test func aViewerFloodingPingsIsIgnoredBeyondTheRateAndKeepsItsFrames() async throws {
        // The limit refills on the relay's clock, which stands still here: exactly the burst (40) is answered.
        try await withRelay(Self.limited(clock: ManualRelayClock()) { $0.maxViewerMessagesPerSecond = 20 }) { relay in
            let viewer = try await relay.viewer("format=binary")
            let streamer = try await relay.streamer("cam")
            for _ in 0..<500 { viewer.send(#"{"type":"ping"}"#) }
            for i in 0..<5 { streamer.send(TestFrames.jpeg(i)) }
            try await relay.eventually("frames still arrive") {
                // Latest wins, so the newest frame is what must arrive.
                viewer.binaryFrames.last?.header["seq"] == .number(4)
            }
            // Every ping is either answered or counted as ignored: the burst answered, the rest ignored.
            try await relay.eventually("every ping answered or counted") {
                viewer.json(type: "pong").count + (try await Self.limitHits(relay, "viewer_messages")) == 500
            }
            #expect(viewer.json(type: "pong").count == 40)
            await streamer.close(); await viewer.close()
        }
    }

    /// A dashboard of many tiles acks every frame it draws, far more than the
    /// message limit: acks of frames the relay wrote are never ignored (that
    /// froze a 16-tile dashboard), acks of nothing count like any message.
    @Test func aCreditViewersAcksOfWrittenFramesAreNotCountedAgainstTheMessageLimit() async throws {
        try await withRelay(Self.limited { $0.maxViewerMessagesPerSecond = 5 }) { relay in
            let viewer = try await relay.viewer("format=binary&flow=credit")
            let streamer = try await relay.streamer("cam")
            for i in 0..<40 {
                streamer.send(TestFrames.jpeg(i))
                try await relay.eventually("frame \(i)") { viewer.binaryFrames.count == i + 1 }
                let seq = Int(viewer.binaryFrames[i].header["seq"]!.numberValue!)
                viewer.send(#"{"type":"ack","stream_id":"cam","seq":\#(seq)}"#)
            }
            #expect(viewer.binaryFrames.count == 40)
            #expect(try await Self.limitHits(relay, "viewer_messages") == 0, "40 acks in well under the 8 s a 5/s limit allows")
            for _ in 0..<100 { viewer.send(#"{"type":"ack","stream_id":"cam","seq":0}"#) }
            try await relay.eventually("acks of nothing are limited") { try await Self.limitHits(relay, "viewer_messages") >= 50 }
        }
    }

    @Test func anEndlessMessageIsCutOffAtTheSizeLimit() async throws {
        try await withRelay(.test { $0.maxMessageBytes = 64 * 1024 }) { relay in
            let viewer = try await relay.viewer()
            let raw = try await RawWebSocket.connect(port: relay.port, path: "/ws/stream/endless")
            // A text message that never ends: a first fragment, then continuations, none final.
            try await raw.sendFragment(Array(repeating: UInt8(ascii: "a"), count: 16 * 1024), first: true)
            for _ in 0..<16 { try? await raw.sendFragment(Array(repeating: UInt8(ascii: "a"), count: 16 * 1024), first: false) }
            try await relay.eventually("counted") { try await Self.limitHits(relay, "message_size") == 1 }
            let other = try await relay.streamer("fine")
            other.send(TestFrames.jpeg(0))
            try await viewer.waitFor(type: "stream_started", stream: "fine")
            await raw.drop(); await other.close(); await viewer.close()
        }
    }

    static func connect(_ port: Int) async throws -> any Channel {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get()
    }

    /// Connects and waits for the relay's answer to a request on the
    /// connection, which it keeps open: proof that the relay accepted the
    /// connection and counted it.
    static func connectAccepted(_ port: Int) async throws -> any Channel {
        let answered = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Void.self)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { $0.pipeline.addHandler(FirstRead(answered: answered)) }
            .connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(ByteBuffer(string: "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
        try await answered.futureResult.get()
        return channel
    }

    private final class FirstRead: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let answered: EventLoopPromise<Void>
        init(answered: EventLoopPromise<Void>) { self.answered = answered }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { answered.succeed() }
        func channelInactive(context: ChannelHandlerContext) {
            answered.fail(ChannelError.ioOnClosedChannel)
            context.fireChannelInactive()
        }
    }
}
