import Foundation

extension Date {
    /// Milliseconds since the epoch, as the wire contract and the revocation file count time.
    package var millisecondsSince1970: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }
}
