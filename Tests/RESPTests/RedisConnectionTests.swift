import NIOConcurrencyHelpers
import NIOCore
@testable import RESP
import TestFixtures
import Testing

/// The client against a real redis-server on a loopback port.
@Suite("Redis connection", .serialized, .timeLimit(.minutes(1)))
struct RedisConnectionTests {
    @Test func commandsGetTheirRepliesInOrderWhenPipelined() async throws {
        let redis = try await RedisServerProcess()
        let connection = try await RedisConnection.connect(to: redis.url, clientName: "test")
        defer { connection.close() }
        let jpeg = ByteBuffer(bytes: (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let futures = (0..<200).map { i in connection.send(RESPCommand("SET", .string("k\(i)"), .bytes(i == 7 ? jpeg : ByteBuffer(string: "\(i)")))) }
        for f in futures { #expect(try await f.get() == .simpleString("OK")) }
        let replies = try await (0..<200).asyncMap { try await connection.run(RESPCommand("GET", .string("k\($0)"))) }
        #expect(replies[7].bytes == jpeg)
        #expect(replies[199].string == "199")
        #expect(try await connection.run(RESPCommand("GET", "missing")) == .bulkString(nil))
    }

    @Test func refusalsThrowWithRedisMessage() async throws {
        let redis = try await RedisServerProcess()
        let connection = try await RedisConnection.connect(to: redis.url, clientName: "test")
        defer { connection.close() }
        await #expect { try await connection.run(RESPCommand("NOSUCHCOMMAND")) } throws: { error in
            (error as? RedisServerError)?.message.contains("unknown command") == true
        }
        // The connection is still usable after a refusal.
        #expect(try await connection.run(RESPCommand("PING")) == .simpleString("PONG"))
    }

    @Test func passwordAndDatabaseFromTheURL() async throws {
        let redis = try await RedisServerProcess()
        _ = try await redis.command("CONFIG", "SET", "requirepass", "s3cret")
        var url = redis.url
        await #expect { try await RedisConnection.connect(to: url, clientName: "test") } throws: { "\($0)".contains("NOAUTH") }
        url.password = "wrong"
        await #expect { try await RedisConnection.connect(to: url, clientName: "test") } throws: { "\($0)".contains("WRONGPASS") }
        url.password = "s3cret"
        url.database = 5
        let connection = try await RedisConnection.connect(to: url, clientName: "test-db5")
        defer { connection.close() }
        _ = try await connection.run(RESPCommand("SET", "where", "five"))
        let info = try await connection.run(RESPCommand("CLIENT", "INFO")).string ?? ""
        #expect(info.contains("db=5"))
        #expect(info.contains("name=test-db5"))
    }

    @Test func subscriberGetsMessagesInPublishOrder() async throws {
        let redis = try await RedisServerProcess()
        let received = NIOLockedValueBox<[RESPValue]>([])
        let pushed = ChangeSignal()
        let subscriber = try await RedisConnection.connect(to: redis.url, clientName: "sub") { push in
            received.withLockedValue { $0.append(push) }
            pushed.changed()
        }
        defer { subscriber.close() }
        let publisher = try await RedisConnection.connect(to: redis.url, clientName: "pub")
        defer { publisher.close() }
        subscriber.sendSubscription(RESPCommand("SUBSCRIBE", "a", "b"))
        await pushed.expect("the two confirmations") { received.withLockedValue { $0.count } == 2 }
        for i in 0..<100 { publisher.sendIgnoringReply(RESPCommand("PUBLISH", i % 2 == 0 ? "a" : "b", .string("\(i)"))) }
        await pushed.expect("the hundred messages") { received.withLockedValue { $0.count } == 102 }
        let messages = received.withLockedValue { $0 }.dropFirst(2).compactMap(\.array)
        #expect(messages.map { $0[0].string } == Array(repeating: "message", count: 100))
        #expect(messages.map { $0[2].string } == (0..<100).map { "\($0)" })
        // A PUBLISH's reply is still read in turn: the next awaited command gets its own.
        #expect(try await publisher.run(RESPCommand("PING")) == .simpleString("PONG"))
    }

    @Test func aKilledServerClosesTheConnectionAndFailsWaitingCommands() async throws {
        let redis = try await RedisServerProcess()
        let connection = try await RedisConnection.connect(to: redis.url, clientName: "test")
        let blocked = Task { try await connection.run(RESPCommand("BLPOP", "never", "0"), timeout: .seconds(30)) }
        // The server says the command is waiting (each question is a round trip, which is the wait).
        let probe = try await RedisConnection.connect(to: redis.url, clientName: "probe")
        let deadline = ContinuousClock.now + .seconds(5)
        while try await probe.run(RESPCommand("INFO", "clients")).string?.contains("blocked_clients:1") != true {
            guard ContinuousClock.now < deadline else { Issue.record("BLPOP never blocked"); break }
        }
        await redis.stop()
        await #expect(throws: RedisConnectionError.self) { _ = try await blocked.value }
        try await connection.closeFuture.get()
        #expect(!connection.isActive)
    }

    @Test func aServerThatStopsAnsweringTimesOut() async throws {
        let redis = try await RedisServerProcess()
        let connection = try await RedisConnection.connect(to: redis.url, clientName: "test")
        await #expect { try await connection.run(RESPCommand("BLPOP", "never", "0"), timeout: .milliseconds(300)) } throws: { error in
            "\(error)".contains("did not answer BLPOP")
        }
        try await connection.closeFuture.get()
    }

    /// A TLS handshake refused between connect and the first command leaves
    /// the same closed channel: a command on it once waited forever (seen
    /// in a CI run), since no handler was left to answer or time it out.
    @Test func aCommandOnAClosedConnectionFailsInsteadOfWaiting() async throws {
        let redis = try await RedisServerProcess()
        let connection = try await RedisConnection.connect(to: redis.url, clientName: "test")
        connection.close()
        try await connection.closeFuture.get()
        connection.sendIgnoringReply(RESPCommand("PUBLISH", "c", "x"))
        let ran = try await outcome(within: .seconds(3)) { _ = try await connection.run(RESPCommand("PING"), timeout: .seconds(30)) }
        #expect(ran?.contains("could not send PING") == true)
        let sent = try await outcome(within: .seconds(3)) { _ = try await connection.send(RESPCommand("PING")).get() }
        #expect(sent?.contains("could not send PING") == true)
    }

    /// Runs `operation` where a wait that never ends fails the test instead
    /// of hanging it; returns the error's text, "succeeded", or nil if it
    /// is still waiting at the deadline.
    private func outcome(within timeout: Duration, _ operation: @escaping @Sendable () async throws -> Void) async throws -> String? {
        let result = NIOLockedValueBox<String?>(nil)
        let ended = ChangeSignal()
        Task {
            do {
                try await operation()
                result.withLockedValue { $0 = "succeeded" }
            } catch {
                result.withLockedValue { $0 = "\(error)" }
            }
            ended.changed()
        }
        _ = await ended.wait(timeout: timeout) { result.withLockedValue { $0 } != nil }
        return result.withLockedValue { $0 }
    }

    @Test func connectingToNothingFailsFast() async throws {
        let redis = try await RedisServerProcess()
        let url = redis.url
        await redis.stop()
        let start = ContinuousClock.now
        await #expect(throws: (any Error).self) { try await RedisConnection.connect(to: url, clientName: "test") }
        #expect(ContinuousClock.now - start < .seconds(3))
    }
}

extension ChangeSignal {
    /// Waits for `condition`, woken at each change; records a failure after `timeout`.
    func expect(_ what: String, timeout: Duration = TestDeadline.event, _ condition: () -> Bool) async {
        if await wait(timeout: timeout, until: condition) { return }
        Issue.record("condition not met within \(timeout): \(what)")
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for e in self { result.append(try await transform(e)) }
        return result
    }
}

@Suite("Redis over TLS", .serialized, .timeLimit(.minutes(1)))
struct RedisTLSTests {
    @Test func redissVerifiesTheServerAndCarriesCommands() async throws {
        let redis = try await RedisServerProcess(tls: true)
        let connection = try await RedisConnection.connect(to: redis.url, clientName: "tls", tls: redis.clientTLS)
        defer { connection.close() }
        #expect(try await connection.run(RESPCommand("PING")) == .simpleString("PONG"))
        #expect(try await connection.run(RESPCommand("CLIENT", "INFO")).string?.contains("name=tls") == true)
    }

    @Test func anUntrustedCertificateIsRefused() async throws {
        let redis = try await RedisServerProcess(tls: true)
        // The system's roots do not include the test's self-signed certificate.
        await #expect(throws: (any Error).self) { try await RedisConnection.connect(to: redis.url, clientName: "tls") }
        // Nor does plain text reach a TLS port.
        var plain = redis.url
        plain.useTLS = false
        await #expect(throws: (any Error).self) { try await RedisConnection.connect(to: plain, clientName: "plain", connectTimeout: .seconds(1)) }
    }
}
