import Access
import RelayCore

extension ViewerLeaveReason {
    /// How a socket whose token ended leaves.
    package init(_ end: TokenEnd) { self = end == .expired ? .tokenExpired : .tokenRevoked }
}
