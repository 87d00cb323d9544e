import Foundation
import HummingbirdCore

extension URI {
    /// The query's name/value pairs, percent-decoded, in order: the form
    /// `ViewerOptions` reads, the same at the gate and in the route.
    var queryItems: [(name: String, value: String)] {
        guard let query else { return [] }
        return (URLComponents(string: "?" + query)?.queryItems ?? []).map { ($0.name, $0.value ?? "") }
    }
}
