/// The contract's stream ids: 1–64 characters of `[A-Za-z0-9._-]`, checked
/// before the WebSocket upgrade.
public enum StreamID {
    /// The rule, as a refusal says it.
    public static let rule = "stream id must be 1-64 characters of A-Z a-z 0-9 . _ -"

    public static func isValid(_ id: Substring) -> Bool {
        (1...64).contains(id.utf8.count) && id.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
        }
    }
}
