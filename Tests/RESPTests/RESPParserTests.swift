import NIOCore
import PropertyBased
@testable import RESP
import Testing
import TestSupport

@Suite("RESP parser")
struct RESPParserTests {
    let parser = RESPParser()

    func parseAll(_ text: String) throws -> [RESPValue] {
        var buffer = ByteBuffer(string: text)
        var values: [RESPValue] = []
        while let v = try parser.parse(&buffer) { values.append(v) }
        #expect(buffer.readableBytes == 0, "bytes left over")
        return values
    }

    @Test func everyTypeRedisSends() throws {
        let values = try parseAll("+OK\r\n-ERR wrong\r\n:42\r\n:-7\r\n$5\r\nhello\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n*2\r\n$3\r\nfoo\r\n:1\r\n")
        #expect(values == [
            .simpleString("OK"), .error("ERR wrong"), .integer(42), .integer(-7),
            .bulkString(ByteBuffer(string: "hello")), .bulkString(ByteBuffer()), .bulkString(nil), .array(nil), .array([]),
            .array([.bulkString(ByteBuffer(string: "foo")), .integer(1)]),
        ])
    }

    @Test func bulkStringsAreBinarySafe() throws {
        var buffer = ByteBuffer(string: "$4\r\n")
        buffer.writeBytes([0x0D, 0x0A, 0x00, 0xFF])
        buffer.writeString("\r\n")
        #expect(try parser.parse(&buffer) == .bulkString(ByteBuffer(bytes: [0x0D, 0x0A, 0x00, 0xFF])))
    }

    /// A pub/sub message cut at every byte: nothing is returned or consumed
    /// until the last byte arrives, then exactly the message.
    @Test func incompleteInputConsumesNothing() throws {
        let whole = "*3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$10\r\n0123456789\r\n"
        let bytes = Array(whole.utf8)
        for cut in 0..<bytes.count {
            var buffer = ByteBuffer(bytes: bytes[..<cut])
            #expect(try parser.parse(&buffer) == nil, "cut at \(cut)")
            #expect(buffer.readableBytes == cut)
            buffer.writeBytes(bytes[cut...])
            #expect(try parser.parse(&buffer)?.array?.last?.string == "0123456789")
            #expect(buffer.readableBytes == 0)
        }
    }

    @Test(arguments: [
        ("?x\r\n", "unknown type byte"),
        (":12a\r\n", "bad integer"),
        (":99999999999999999999\r\n", "bad integer"),
        ("$-5\r\n", "bulk string length"),
        ("$3\r\nabcX\r\n", "not followed by CRLF"),
        ("+OK\rX", "CR not followed by LF"),
        ("*-2\r\n", "array length"),
    ] as [(TestInput, String)])
    func malformedInputIsAnError(input: TestInput, reason: String) {
        var buffer = ByteBuffer(string: input.text)
        #expect { try parser.parse(&buffer) } throws: { error in
            (error as? RESPProtocolError)?.reason.contains(reason) == true
        }
    }

    @Test func sizesAreBounded() {
        let small = RESPParser(maxBulkLength: 10, maxArrayLength: 3, maxDepth: 2, maxLineLength: 8)
        for (input, reason) in [("$11\r\n", "exceeds 10"), ("*4\r\n", "exceeds 3"), ("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", "deeper than 2"),
                                ("+0123456789", "longer than 8")] {
            var buffer = ByteBuffer(string: input)
            #expect(throws: RESPProtocolError.self, "\(input)") { try small.parse(&buffer) }
            #expect { try small.parse(&buffer) } throws: { ($0 as? RESPProtocolError)?.reason.contains(reason) == true }
        }
    }

    @Test func commandsAreArraysOfBulkStrings() {
        var buffer = ByteBuffer()
        RESPCommand("PUBLISH", "chan", .bytes(ByteBuffer(bytes: [0, 1, 2]))).encode(into: &buffer)
        #expect(buffer == ByteBuffer(bytes: Array("*3\r\n$7\r\nPUBLISH\r\n$4\r\nchan\r\n$3\r\n".utf8) + [0, 1, 2] + Array("\r\n".utf8)))
    }

    /// Whatever value, written as RESP and delivered in arbitrary pieces,
    /// reads back as itself.
    @Test func anyValueRoundTripsInAnyChunking() async {
        let leaf = Gen<RESPValue>.oneOf(
            Gen<Int64>.int64(in: Int64.min + 1...Int64.max).map { RESPValue.integer($0) },
            Gen<UInt8>.value(in: 0...255).array(of: 0...300).map { RESPValue.bulkString(ByteBuffer(bytes: $0)) },
            Gen<UInt8>.value(in: 0x20...0x7E).array(of: 0...40).map { RESPValue.simpleString(String(decoding: $0, as: UTF8.self)) },
            Gen<UInt8>.value(in: 0x20...0x7E).array(of: 0...40).map { RESPValue.error(String(decoding: $0, as: UTF8.self)) },
            Gen<Bool>.bool.map { $0 ? RESPValue.bulkString(nil) : RESPValue.array(nil) })
        let value = Gen<RESPValue>.oneOf(leaf, leaf.array(of: 0...6).map { RESPValue.array($0) })
        await propertyCheck(count: 400, input: value.array(of: 1...5), Gen<Int>.int(in: 1...64)) { values, chunk in
            var encoded = ByteBuffer()
            for v in values { Self.write(v, into: &encoded) }
            var received = ByteBuffer()
            var decoded: [RESPValue] = []
            while encoded.readableBytes > 0 {
                var piece = encoded.readSlice(length: min(chunk, encoded.readableBytes))!
                received.writeBuffer(&piece)
                while let v = try! parser.parse(&received) { decoded.append(v) }
            }
            #expect(decoded == values)
        }
    }

    static func write(_ value: RESPValue, into buffer: inout ByteBuffer) {
        switch value {
        case .simpleString(let s): buffer.writeString("+\(s)\r\n")
        case .error(let s): buffer.writeString("-\(s)\r\n")
        case .integer(let n): buffer.writeString(":\(n)\r\n")
        case .bulkString(nil): buffer.writeString("$-1\r\n")
        case .bulkString(let b?):
            buffer.writeString("$\(b.readableBytes)\r\n")
            buffer.writeImmutableBuffer(b)
            buffer.writeString("\r\n")
        case .array(nil): buffer.writeString("*-1\r\n")
        case .array(let a?):
            buffer.writeString("*\(a.count)\r\n")
            for v in a { write(v, into: &buffer) }
        }
    }
}

@Suite("Redis URL")
struct RedisURLTests {
    @Test func fullAndMinimalForms() throws {
        #expect(try RedisURL("redis://localhost") == RedisURL(host: "localhost"))
        #expect(try RedisURL("redis://10.0.0.5:6380/3") == RedisURL(host: "10.0.0.5", port: 6380, database: 3))
        #expect(try RedisURL("rediss://:s%40cret@cache.example:6390") == RedisURL(host: "cache.example", port: 6390, useTLS: true, password: "s@cret"))
        #expect(try RedisURL("redis://relay:pw@[::1]:7000/1") == RedisURL(host: "::1", port: 7000, username: "relay", password: "pw", database: 1))
        #expect(try RedisURL("redis://pw@host/") == RedisURL(host: "host", password: "pw"))
    }

    @Test(arguments: [
        ("http://host", "must start with redis://, rediss://, redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster://"),
        ("redis+cluster://h1,", "no host"),
        ("redis+cluster://h1:7000/1", "a Redis Cluster has only database 0"),
        ("redis+sentinel://h1,h2", "name the master after the sentinels"),
        ("redis+sentinel://h1:26379,/m", "no host"),
        ("redis+sentinel://h1/m/x", "database must be a number"),
        ("redis+sentinel://h1/m/0/extra", "expected /master-name[/db]"),
        ("redis://", "no host"),
        ("redis://host:0", "port must be 1-65535"),
        ("redis://host:abc", "port must be 1-65535"),
        ("redis://host/x", "database must be a number"),
        ("redis://[::1", "unclosed ["),
        ("redis://:%zz@host", "bad %-escape in the password"),
    ])
    func badURLsSayWhatIsWrong(text: String, reason: String) {
        #expect { try RedisURL(text) } throws: { "\($0)".contains(reason) }
    }

    @Test func sentinelURLsListTheSentinelsAndNameTheMaster() throws {
        let url = try RedisURL("redis+sentinel://relay:pw@10.0.0.1,10.0.0.2:26380,[::1]/ward-redis/2")
        #expect(url.usesSentinel && url.masterName == "ward-redis")
        #expect(url.sentinels == [.init(host: "10.0.0.1", port: 26379), .init(host: "10.0.0.2", port: 26380), .init(host: "::1", port: 26379)])
        #expect(url.username == "relay" && url.password == "pw" && url.database == 2 && !url.useTLS)
        #expect(url.description == "redis+sentinel://relay:***@10.0.0.1:26379,10.0.0.2:26380,[::1]:26379/ward-redis/2")
        // The master a sentinel names keeps the URL's login and database.
        #expect(url.at(.init(host: "10.0.0.9", port: 6380)) == RedisURL(host: "10.0.0.9", port: 6380, username: "relay", password: "pw", database: 2))
        let tls = try RedisURL("rediss+sentinel://s1:1/m")
        #expect(tls.useTLS && tls.sentinels == [.init(host: "s1", port: 1)] && tls.database == 0)
        #expect(try !RedisURL("redis://h").usesSentinel)
    }

    @Test func clusterURLsListTheNodesToAskForTheShards() throws {
        let url = try RedisURL("redis+cluster://relay:pw@10.0.0.1,10.0.0.2:7001,[::1]:7002")
        #expect(url.usesCluster && !url.usesSentinel)
        #expect(url.clusterSeeds == [.init(host: "10.0.0.1", port: 6379), .init(host: "10.0.0.2", port: 7001), .init(host: "::1", port: 7002)])
        #expect(url.username == "relay" && url.password == "pw" && url.database == 0 && !url.useTLS)
        #expect(url.description == "redis+cluster://relay:***@10.0.0.1:6379,10.0.0.2:7001,[::1]:7002")
        // Each node is reached with the URL's login.
        #expect(url.at(.init(host: "10.0.0.9", port: 7005)) == RedisURL(host: "10.0.0.9", port: 7005, username: "relay", password: "pw"))
        let tls = try RedisURL("rediss+cluster://n1:7000/0")
        #expect(tls.useTLS && tls.clusterSeeds == [.init(host: "n1", port: 7000)])
        #expect(try !RedisURL("redis://h").usesCluster)
    }

    @Test func passwordsNeverShow() throws {
        let url = try RedisURL("redis://u:hunter2@host:1/2")
        #expect(!url.description.contains("hunter2"))
        #expect { try RedisURL("redis://u:hunter2@host:x") } throws: { !"\($0)".contains("hunter2") }
    }
}
