import NIOCore
import RESP

/// What a node reads from Redis: any bytes must give values or a
/// RESPProtocolError, never a crash or an unbounded allocation. And since
/// the socket delivers them in arbitrary pieces, parsing them as they
/// arrive (split where the input's first byte says) must give exactly what
/// parsing them at once gives. Each value is also read as a Redis Cluster
/// would mean it (a `CLUSTER SHARDS` reply, a `MOVED`/`ASK` refusal): a
/// topology or an error, never a crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let chunk = Int(bytes[0] % 16) + 1
    let input = Array(bytes.dropFirst())
    // Small limits, so the limit checks are reached as often as the values.
    for parser in [RESPParser(), RESPParser(maxBulkLength: 64, maxArrayLength: 8, maxDepth: 3, maxLineLength: 32)] {
        let whole = parseAll(parser, pieces: [input[...]])
        let pieces = stride(from: 0, to: input.count, by: chunk).map { input[$0..<min($0 + chunk, input.count)] }
        let split = parseAll(parser, pieces: pieces)
        if whole != split {
            fatalError("split parsing differs: whole \(whole), in pieces of \(chunk): \(split)")
        }
        for value in whole.values { readAsCluster(value) }
    }
    return 0
}

private struct Outcome: Equatable, CustomStringConvertible {
    var values: [RESPValue] = []
    var error: RESPProtocolError?
    var description: String { "\(values.count) values, error \(error.map(\.reason) ?? "none")" }
}

private func parseAll(_ parser: RESPParser, pieces: [ArraySlice<UInt8>]) -> Outcome {
    var outcome = Outcome()
    var buffer = ByteBuffer()
    for piece in pieces {
        buffer.writeBytes(piece)
        do {
            while let value = try parser.parse(&buffer) { outcome.values.append(value) }
        } catch {
            outcome.error = error as? RESPProtocolError
            return outcome
        }
    }
    return outcome
}

private func readAsCluster(_ value: RESPValue) {
    let here = RedisURL.Endpoint(host: "127.0.0.1", port: 7000)
    if let redirection = RedisRedirection(value, from: here) {
        switch redirection {
        case .moved(let slot, _), .ask(let slot, _):
            if !(0..<RedisKeySlot.count).contains(slot) { fatalError("a redirection to slot \(slot)") }
        }
    }
    if let topology = try? RedisClusterTopology(shardsReply: value) {
        for key in ["", "a", "{framepipe}:streams", "framepipe:frames:{cam-1}"] {
            if let shard = topology.shard(forKey: key),
               !shard.slots.contains(where: { $0.contains(RedisKeySlot.of(key)) }) {
                fatalError("key \(key) given to a shard that does not own its slot")
            }
        }
    }
}
