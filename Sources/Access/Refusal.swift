import HTTPTypes
import WireProtocol
import NIOCore
import Pipeline

/// A request the relay will not serve, with what a client author needs to
/// fix it: the status, a short code (`missing`, `bad_path`, `not_found`,
/// `origin`, …) and the sentence. Every refusal before or at the upgrade
/// answers with the same JSON body, `{"error": code, "reason": sentence}`.
package struct Refusal: Error, Sendable, Equatable {
    package let status: HTTPResponse.Status
    package let code: String
    package let reason: String

    var jsonText: String {
        JSONValue.object([("error", .string(code)), ("reason", .string(reason))]).jsonText
    }


    init(status: HTTPResponse.Status, code: String, reason: String) {
        self.status = status
        self.code = code
        self.reason = reason
    }

    package init(_ failure: AuthFailure) {
        self.init(status: failure.status, code: failure.kind.rawValue, reason: failure.reason)
    }

    package init(_ problem: RequestPath.Problem) {
        self.init(status: .badRequest, code: "bad_path", reason: problem.description)
    }
}
