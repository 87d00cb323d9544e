import Access
import Hummingbird
import Pipeline

extension Refusal {
    /// The refusal as an HTTP response with its JSON body (401s say `WWW-Authenticate: Bearer`).
    func response() -> Response {
        var response = Response.json(.object([("error", .string(code)), ("reason", .string(reason))]), status: status)
        if status == .unauthorized { response.headers[.wwwAuthenticate] = "Bearer" }
        return response
    }
}
