/// JSON text written byte by byte into one buffer (by `JSONWriter`): what
/// the API, the log and the wire messages answer with. `/api/viewers` with
/// a thousand viewers is about 280 KB; building it as nested strings joined
/// at every level, escaping one Unicode scalar at a time, made it cost
/// about 7 ms of a core, during which the dashboard asking waits.
extension JSONValue {
    /// Compact JSON text, as it would be written in a config file.
    public var jsonText: String {
        var out: [UInt8] = []
        write(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends this value's compact JSON text (`", "` and `": "` between
    /// members, as a config file is written) to `out`.
    public func write(to out: inout [UInt8]) {
        var writer = JSONWriter()
        swap(&writer.bytes, &out)
        writer.value(self)
        swap(&writer.bytes, &out)
    }

    /// `s` as a JSON string literal, escaped as RFC 8259 requires.
    public static func quoted(_ s: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count + 2)
        writeQuoted(s, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `s` as a JSON string literal. Only `"`, `\` and the control
    /// characters are escaped; everything else, non-ASCII included, is
    /// valid inside a JSON string as UTF-8. Byte by byte: the strings
    /// written most (ids, names) are a few bytes, where appending each
    /// byte costs a third of copying a run.
    public static func writeQuoted(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { bytes in
            for byte in bytes {
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else {
                    out.append(byte)
                    continue
                }
                out.append(UInt8(ascii: "\\"))
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(byte)
                case UInt8(ascii: "\n"): out.append(UInt8(ascii: "n"))
                case UInt8(ascii: "\r"): out.append(UInt8(ascii: "r"))
                case UInt8(ascii: "\t"): out.append(UInt8(ascii: "t"))
                default:
                    out.append(UInt8(ascii: "u"))
                    out.append(UInt8(ascii: "0"))
                    out.append(UInt8(ascii: "0"))
                    out.append(hexDigit(byte >> 4))
                    out.append(hexDigit(byte & 0xF))
                }
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }
}
