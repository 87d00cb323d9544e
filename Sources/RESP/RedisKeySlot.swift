/// Which of a Redis Cluster's 16384 hash slots a key (or a sharded pub/sub
/// channel) belongs to: CRC16 (XMODEM) of the key modulo 16384, or of its
/// hash tag, the part between the first `{` and the next `}`, when that part
/// is not empty. Keys that share a tag share a slot, and so a shard: what one
/// Lua script touches must.
///
/// The relay computes it itself so that it sends each command straight to
/// the shard that owns the key, and follows a `MOVED` only after the
/// cluster changed.
public enum RedisKeySlot {
    public static let count = 16384

    public static func of(_ key: String) -> Int {
        of(Array(key.utf8))
    }

    public static func of(_ key: [UInt8]) -> Int {
        Int(crc16(hashed(key)) & UInt16(count - 1))
    }

    /// The bytes the slot is computed from: the hash tag if the key has one.
    static func hashed(_ key: [UInt8]) -> ArraySlice<UInt8> {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")),
              let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")),
              close > open + 1
        else { return key[...] }
        return key[(open + 1)..<close]
    }

    /// CRC16-CCITT as XMODEM computes it (polynomial 0x1021, initial value 0), as Redis does.
    static func crc16(_ bytes: ArraySlice<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 {
                crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
            }
        }
        return crc
    }
}
