import NIOCore

/// Strict RFC 4648 base64 (standard alphabet, padding required, no
/// whitespace), decoding straight into a `ByteBuffer` and encoding straight
/// into a `String`'s storage.
///
/// Strict because a lenient decoder turns a corrupted frame into a
/// plausible-looking corrupted JPEG; the frame path must reject it instead.
public enum Base64 {
    static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// 0...63 for alphabet bytes, 0xFF otherwise.
    static let decodeTable: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    public static func decode(_ text: Substring) -> ByteBuffer? {
        var text = text
        return text.withUTF8 { decode(bytes: $0) }
    }

    public static func decode(_ text: String) -> ByteBuffer? {
        decode(Substring(text))
    }

    public static func decode(bytes input: UnsafeBufferPointer<UInt8>) -> ByteBuffer? {
        let n = input.count
        guard n % 4 == 0 else { return nil }
        if n == 0 { return ByteBuffer() }
        var padding = 0
        if input[n - 1] == UInt8(ascii: "=") { padding += 1 }
        if input[n - 2] == UInt8(ascii: "=") { padding += 1 }
        let outputCount = n / 4 * 3 - padding
        var buffer = ByteBufferAllocator().buffer(capacity: outputCount)
        let ok = decodeTable.withUnsafeBufferPointer { table -> Bool in
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: outputCount) { raw in
                let out = raw.bindMemory(to: UInt8.self)
                var o = 0
                var bad: UInt8 = 0
                let fullQuads = padding == 0 ? n / 4 : n / 4 - 1
                var i = 0
                for _ in 0..<fullQuads {
                    let a = table[Int(input[i])], b = table[Int(input[i + 1])]
                    let c = table[Int(input[i + 2])], d = table[Int(input[i + 3])]
                    bad |= a | b | c | d
                    out[o] = a << 2 | b >> 4
                    out[o + 1] = b << 4 | c >> 2
                    out[o + 2] = c << 6 | d
                    o += 3
                    i += 4
                }
                guard bad & 0xC0 == 0 else { return 0 }
                if padding > 0 {
                    let a = table[Int(input[i])], b = table[Int(input[i + 1])]
                    guard a | b < 64 else { return 0 }
                    out[o] = a << 2 | b >> 4
                    o += 1
                    if padding == 1 {
                        let c = table[Int(input[i + 2])]
                        // Non-canonical trailing bits mean the text was altered.
                        guard c < 64, c & 0x03 == 0 else { return 0 }
                        out[o] = b << 4 | c >> 2
                        o += 1
                    } else {
                        guard b & 0x0F == 0 else { return 0 }
                    }
                }
                return o
            }
            return buffer.readableBytes == outputCount
        }
        return ok ? buffer : nil
    }

    /// Base64 of the readable bytes of `buffer`, with padding.
    public static func encode(_ buffer: ByteBuffer) -> String {
        buffer.withUnsafeReadableBytes { raw in encode(bytes: raw.bindMemory(to: UInt8.self)) }
    }

    public static func encode(bytes input: UnsafeBufferPointer<UInt8>) -> String {
        let outputCount = (input.count + 2) / 3 * 4
        return alphabet.withUnsafeBufferPointer { table in
            String(unsafeUninitializedCapacity: outputCount) { out in
                var i = 0
                var o = 0
                while i + 3 <= input.count {
                    let v = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2])
                    out[o] = table[Int(v >> 18)]
                    out[o + 1] = table[Int(v >> 12 & 63)]
                    out[o + 2] = table[Int(v >> 6 & 63)]
                    out[o + 3] = table[Int(v & 63)]
                    i += 3
                    o += 4
                }
                let rest = input.count - i
                if rest > 0 {
                    let v = UInt32(input[i]) << 16 | (rest == 2 ? UInt32(input[i + 1]) << 8 : 0)
                    out[o] = table[Int(v >> 18)]
                    out[o + 1] = table[Int(v >> 12 & 63)]
                    out[o + 2] = rest == 2 ? table[Int(v >> 6 & 63)] : UInt8(ascii: "=")
                    out[o + 3] = UInt8(ascii: "=")
                    o += 4
                }
                return o
            }
        }
    }
}
