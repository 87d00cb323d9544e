import NIOCore

/// A command as Redis reads it from a client: an array of bulk strings.
/// Binary arguments (a JPEG) are written as they are, never re-encoded.
public struct RESPCommand: Sendable {
    public enum Argument: Sendable, ExpressibleByStringLiteral {
        case string(String)
        case bytes(ByteBuffer)
        public init(stringLiteral value: String) { self = .string(value) }
    }

    public var arguments: [Argument]

    public init(_ arguments: [Argument]) {
        self.arguments = arguments
    }

    public init(_ name: String, _ rest: Argument...) {
        self.arguments = [.string(name)] + rest
    }

    /// The command's name, for errors and logs (never its arguments, which may hold a password).
    public var name: String {
        if case .string(let s)? = arguments.first { return s }
        return "?"
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeString("*\(arguments.count)\r\n")
        for argument in arguments {
            switch argument {
            case .string(let s):
                buffer.writeString("$\(s.utf8.count)\r\n")
                buffer.writeString(s)
            case .bytes(let b):
                buffer.writeString("$\(b.readableBytes)\r\n")
                buffer.writeImmutableBuffer(b)
            }
            buffer.writeStaticString("\r\n")
        }
    }

    public var encodedSize: Int {
        arguments.reduce(16) { total, argument in
            switch argument {
            case .string(let s): return total + s.utf8.count + 16
            case .bytes(let b): return total + b.readableBytes + 16
            }
        }
    }
}
