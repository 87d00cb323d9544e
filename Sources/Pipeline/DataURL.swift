import NIOCore

/// A `data:<mime>;base64,<payload>` URL, split without copying the payload.
///
/// Frames in the original text format are data URLs; this is the one place
/// that knows their grammar, so `base64-validation`, the server and the
/// bench agree on what is accepted.
public struct DataURL {
    public let mimeType: Substring
    /// The base64 text after the comma.
    public let base64: Substring

    public enum Problem: Error, Equatable {
        case notDataURL
        case notBase64
        case mimeTypeNotAllowed(String)
    }

    /// Splits `text`; with `allowedMIMETypes` nil any `image/*` type is accepted.
    public static func parse(_ text: String, allowedMIMETypes: [String]?) -> Result<DataURL, Problem> {
        guard text.utf8.starts(with: "data:".utf8),
              let comma = text.utf8.firstIndex(of: UInt8(ascii: ","))
        else { return .failure(.notDataURL) }
        let header = text[text.index(text.startIndex, offsetBy: 5)..<comma]
        guard header.hasSuffix(";base64") else { return .failure(.notBase64) }
        let mime = header.dropLast(";base64".count)
        if let allowed = allowedMIMETypes {
            guard allowed.contains(where: { $0.utf8.elementsEqual(mime.lowercased().utf8) }) else {
                return .failure(.mimeTypeNotAllowed(String(mime)))
            }
        } else if !mime.lowercased().hasPrefix("image/") {
            return .failure(.mimeTypeNotAllowed(String(mime)))
        }
        return .success(DataURL(mimeType: mime, base64: text[text.index(after: comma)...]))
    }

    /// The decoded bytes, or nil if the payload is not strict base64.
    public func decode() -> ByteBuffer? {
        Base64.decode(base64)
    }
}
