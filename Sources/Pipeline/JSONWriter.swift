/// JSON text written straight from a caller's values, with no `JSONValue`
/// tree built first. `/api/viewers` at a thousand viewers is about 280 KB
/// in 20 000 members: building the tree and quoting every key again cost
/// more than writing the text, while a dashboard waited for it. Keys are
/// the caller's constants, checked once to need no escaping; the text is
/// the same, byte for byte, as `JSONValue.write(to:)` gives for the same
/// document, which writes through this type.
public struct JSONWriter {
    /// The text so far.
    public var bytes: [UInt8]
    /// A value was written at this level, so the next one needs a comma.
    private var needsComma = false

    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    // MARK: Containers

    public mutating func object(_ members: (inout JSONWriter) -> Void) {
        open(UInt8(ascii: "{"))
        members(&self)
        close(UInt8(ascii: "}"))
    }

    public mutating func array(_ items: (inout JSONWriter) -> Void) {
        open(UInt8(ascii: "["))
        items(&self)
        close(UInt8(ascii: "]"))
    }

    /// The key of the next member; its value follows with one of the value
    /// methods. A key is a constant of the caller's, so it is copied as it
    /// is: one that needed escaping would be a bug, caught in debug builds.
    public mutating func key(_ key: StaticString) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        assert(key.withUTF8Buffer { !$0.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") } },
               "\(key) needs escaping")
        append(key)
        append("\": ")
        needsComma = false
    }

    /// The key of the next member when it is data (a stream id, a stage's parameter), escaped as needed.
    public mutating func key(_ key: String) {
        separate()
        JSONValue.writeQuoted(key, to: &bytes)
        append(": ")
        needsComma = false
    }

    // MARK: Values

    public mutating func string(_ s: String) {
        separate()
        JSONValue.writeQuoted(s, to: &bytes)
        needsComma = true
    }

    /// Whole numbers below 10^15 as integers, others as Swift spells a `Double`.
    public mutating func number(_ n: Double) {
        separate()
        if n == n.rounded(), abs(n) < 1e15 {
            writeInteger(Int64(n))
        } else {
            bytes.append(contentsOf: String(n).utf8)
        }
        needsComma = true
    }

    public mutating func integer(_ n: Int) {
        separate()
        writeInteger(Int64(n))
        needsComma = true
    }

    public mutating func bool(_ b: Bool) {
        separate()
        append(b ? "true" : "false")
        needsComma = true
    }

    public mutating func null() {
        separate()
        append("null")
        needsComma = true
    }

    public mutating func value(_ value: JSONValue) {
        switch value {
        case .null: null()
        case .bool(let b): bool(b)
        case .number(let n): number(n)
        case .string(let s): string(s)
        case .array(let items): array { for item in items { $0.value(item) } }
        case .object(let members):
            object { writer in
                for member in members {
                    writer.key(member.key)
                    writer.value(member.value)
                }
            }
        }
    }

    // MARK: Members, a key and its value in one call

    public mutating func member(_ name: StaticString, _ value: String) { key(name); string(value) }
    public mutating func member(_ name: StaticString, _ value: Bool) { key(name); bool(value) }
    public mutating func member(_ name: StaticString, _ value: Int) { key(name); integer(value) }
    /// A number, or null where it is not known.
    public mutating func member(_ name: StaticString, _ value: Double?) {
        key(name)
        if let value { number(value) } else { null() }
    }

    // MARK: Bytes

    private mutating func separate() {
        if needsComma { append(", ") }
    }

    private mutating func open(_ bracket: UInt8) {
        separate()
        bytes.append(bracket)
        needsComma = false
    }

    private mutating func close(_ bracket: UInt8) {
        bytes.append(bracket)
        needsComma = true
    }

    /// Keys, punctuation and literals, from the binary's constant bytes.
    /// One byte at a time: for pieces this short that is a third of the
    /// cost of `append(contentsOf:)`, whose every call checks the whole
    /// sequence's size first (measured over a thousand viewers' members).
    private mutating func append(_ text: StaticString) {
        let start = text.utf8Start
        for offset in 0..<text.utf8CodeUnitCount { bytes.append(start[offset]) }
    }

    /// Decimal digits written in place: most members of the API's answers
    /// are counts, and a `String` for each was a fifth of the work.
    private mutating func writeInteger(_ n: Int64) {
        if n < 0 { bytes.append(UInt8(ascii: "-")) }
        var rest = n.magnitude
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var start = digits.count
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            for digit in digits[start...] { bytes.append(digit) }
        }
    }
}
