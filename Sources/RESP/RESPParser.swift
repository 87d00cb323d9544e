import NIOCore

/// Why bytes from Redis could not be read as RESP. The connection that
/// produced them is closed; nothing is guessed.
public struct RESPProtocolError: Error, Equatable, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "RESP protocol error: \(reason)" }
}

/// An incremental RESP2 reader: it returns a value once all of its bytes
/// have arrived and consumes nothing until then, so it can be fed whatever
/// the socket delivered.
///
/// Sizes are bounded, so a broken or hostile peer cannot make it allocate
/// without limit or recurse without end.
public struct RESPParser: Sendable {
    public var maxBulkLength: Int
    public var maxArrayLength: Int
    public var maxDepth: Int
    /// A line (type byte, length, simple string, error) longer than this is an error.
    public var maxLineLength: Int

    public init(maxBulkLength: Int = 64 << 20, maxArrayLength: Int = 1 << 20, maxDepth: Int = 16, maxLineLength: Int = 64 << 10) {
        self.maxBulkLength = maxBulkLength
        self.maxArrayLength = maxArrayLength
        self.maxDepth = maxDepth
        self.maxLineLength = maxLineLength
    }

    /// The next complete value, consuming its bytes; nil (consuming nothing)
    /// if more bytes are needed.
    public func parse(_ buffer: inout ByteBuffer) throws -> RESPValue? {
        var index = buffer.readerIndex
        guard let value = try value(in: buffer, at: &index, depth: 0) else { return nil }
        buffer.moveReaderIndex(to: index)
        return value
    }

    private func value(in buffer: ByteBuffer, at index: inout Int, depth: Int) throws -> RESPValue? {
        guard depth <= maxDepth else { throw RESPProtocolError("arrays nested deeper than \(maxDepth)") }
        guard let type = buffer.getInteger(at: index, as: UInt8.self) else { return nil }
        var cursor = index + 1
        guard let line = try self.line(in: buffer, at: &cursor) else { return nil }
        switch type {
        case UInt8(ascii: "+"):
            index = cursor
            return .simpleString(String(decoding: line, as: UTF8.self))
        case UInt8(ascii: "-"):
            index = cursor
            return .error(String(decoding: line, as: UTF8.self))
        case UInt8(ascii: ":"):
            index = cursor
            return .integer(try Self.integer(line))
        case UInt8(ascii: "$"):
            let length = try Self.integer(line)
            if length == -1 {
                index = cursor
                return .bulkString(nil)
            }
            guard length >= 0 else { throw RESPProtocolError("bulk string length \(length)") }
            guard length <= maxBulkLength else { throw RESPProtocolError("bulk string of \(length) bytes exceeds \(maxBulkLength)") }
            let count = Int(length)
            guard buffer.writerIndex - cursor >= count + 2 else { return nil }
            guard buffer.getInteger(at: cursor + count, as: UInt16.self) == 0x0D0A else {
                throw RESPProtocolError("bulk string not followed by CRLF")
            }
            let bytes = buffer.getSlice(at: cursor, length: count)!
            index = cursor + count + 2
            return .bulkString(bytes)
        case UInt8(ascii: "*"):
            let length = try Self.integer(line)
            if length == -1 {
                index = cursor
                return .array(nil)
            }
            guard length >= 0 else { throw RESPProtocolError("array length \(length)") }
            guard length <= maxArrayLength else { throw RESPProtocolError("array of \(length) elements exceeds \(maxArrayLength)") }
            var elements: [RESPValue] = []
            elements.reserveCapacity(Int(min(length, 1024)))
            for _ in 0..<length {
                guard let element = try value(in: buffer, at: &cursor, depth: depth + 1) else { return nil }
                elements.append(element)
            }
            index = cursor
            return .array(elements)
        default:
            throw RESPProtocolError("unknown type byte 0x\(String(type, radix: 16))")
        }
    }

    /// The bytes up to the next CRLF, moving `index` past it; nil if the
    /// CRLF has not arrived yet.
    private func line(in buffer: ByteBuffer, at index: inout Int) throws -> [UInt8]? {
        let available = buffer.writerIndex - index
        guard let view = buffer.viewBytes(at: index, length: min(available, maxLineLength + 2)) else { return nil }
        guard let cr = view.firstIndex(of: 0x0D) else {
            if available >= maxLineLength + 2 { throw RESPProtocolError("line longer than \(maxLineLength) bytes") }
            return nil
        }
        let offset = cr - view.startIndex
        guard offset + 1 < available else { return nil }  // the LF has not arrived
        guard buffer.getInteger(at: index + offset + 1, as: UInt8.self) == 0x0A else { throw RESPProtocolError("CR not followed by LF") }
        let line = Array(view[view.startIndex..<cr])
        index += offset + 2
        return line
    }

    private static func integer(_ bytes: [UInt8]) throws -> Int64 {
        var digits = bytes[...]
        var negative = false
        if digits.first == UInt8(ascii: "-") {
            negative = true
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.count <= 19 else { throw RESPProtocolError("bad integer \"\(String(decoding: bytes, as: UTF8.self))\"") }
        var value: Int64 = 0
        for d in digits {
            guard d >= 0x30, d <= 0x39 else { throw RESPProtocolError("bad integer \"\(String(decoding: bytes, as: UTF8.self))\"") }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(d - 0x30))
            guard !o1, !o2 else { throw RESPProtocolError("integer overflow") }
            value = a
        }
        return negative ? -value : value
    }
}
