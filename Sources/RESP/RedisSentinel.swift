import NIOCore
import NIOSSL

/// Asks Redis Sentinel where the master is now.
///
/// It exists so a node follows a failover by itself: every connection to a
/// `redis+sentinel://` URL starts here, so a reconnect after the master
/// died reaches the replica the sentinels promoted. Sentinels are asked in
/// the order given; the first that names the master wins.
enum RedisSentinel {
    static func master(of url: RedisURL, group: any EventLoopGroup, connectTimeout: Duration,
                       tls: TLSConfiguration?) async throws -> RedisURL.Endpoint {
        guard let name = url.masterName else { return RedisURL.Endpoint(host: url.host, port: url.port) }
        var failures: [String] = []
        for sentinel in url.sentinels {
            do {
                let connection = try await RedisConnection.connect(
                    to: RedisURL(host: sentinel.host, port: sentinel.port, useTLS: url.useTLS), clientName: "framepipe-sentinel-query",
                    group: group, connectTimeout: connectTimeout, tls: tls)
                defer { connection.close() }
                let reply = try await connection.run(RESPCommand("SENTINEL", "get-master-addr-by-name", .string(name)), timeout: connectTimeout)
                guard let parts = reply.array, parts.count == 2, let host = parts[0].string, let port = parts[1].string.flatMap({ Int($0) })
                else {
                    failures.append("\(sentinel) knows no master named \"\(name)\"")
                    continue
                }
                return RedisURL.Endpoint(host: host, port: port)
            } catch {
                failures.append("\(sentinel): \(error)")
            }
        }
        throw RedisConnectionError(reason: "no sentinel named the master \"\(name)\": " + failures.joined(separator: "; "))
    }
}
