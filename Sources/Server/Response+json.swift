import Hummingbird
import NIOCore
import Pipeline

extension Response {
    /// A JSON answer that no cache keeps: everything the API says is live state.
    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        var text = JSONWriter()
        text.value(value)
        return json(text, status: status)
    }

    /// The text a `JSONWriter` wrote, for answers written without a tree.
    static func json(_ text: JSONWriter, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                 body: .init(byteBuffer: ByteBuffer(bytes: text.bytes)))
    }
}
