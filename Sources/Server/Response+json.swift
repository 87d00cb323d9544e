import Hummingbird
import NIOCore
import Pipeline

extension Response {
    /// A JSON answer that no cache keeps: everything the API says is live state.
    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        var text: [UInt8] = []
        value.write(to: &text)
        return Response(status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(bytes: text)))
    }
}
