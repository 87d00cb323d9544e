import WireProtocol

/// Every request target a client sends: the parser must either refuse it or
/// accept exactly one canonical spelling, one whose segments hold nothing
/// a router could read differently (no empty or dot segment, no `%`, no
/// control byte) and which parses again to the same path.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let target = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let path = try? RequestPath(parsing: target) else { return 0 }
    for segment in path.segments {
        if segment.isEmpty || segment == "." || segment == ".." { fatalError("accepted a non-canonical segment in \(target.debugDescription)") }
        if segment.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 < 0x21 || $0 > 0x7E }) {
            fatalError("accepted a forbidden byte in \(target.debugDescription)")
        }
    }
    let canonical = path.description
    if !target.hasPrefix(canonical) { fatalError("canonical form \(canonical) is not how \(target.debugDescription) spelled it") }
    guard let again = try? RequestPath(parsing: canonical), again.segments == path.segments else {
        fatalError("canonical form \(canonical) does not parse to the same path")
    }
    return 0
}
