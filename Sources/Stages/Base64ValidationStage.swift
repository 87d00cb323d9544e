import Pipeline

/// Checks that a text frame is a `data:<mime>;base64,` URL with an allowed
/// MIME type and strict base64, and decodes it once so later stages and the
/// sink work on bytes. Binary frames pass untouched (they are bytes already).
public struct Base64ValidationStage: Stage {
    public struct Configuration: Sendable {
        public var mimeTypes: [String]
    }

    static let mimeTypes = Parameter.stringList(
        "mimeTypes", default: ["image/jpeg"],
        help: "MIME types accepted in the data URL (lower case)")

    public static let declaration = StageDeclaration(
        name: "base64-validation",
        summary: "Require a data:image/jpeg;base64 URL with strict base64 and decode it once",
        details: "Rejects with not_data_url, not_base64, mime_not_allowed or bad_base64 (bad padding, illegal characters, length not a multiple of 4). Keeps no state.",
        parameters: [mimeTypes])

    public static func configuration(from parameters: StageParameters) -> Configuration {
        Configuration(mimeTypes: parameters[mimeTypes].map { $0.lowercased() })
    }

    let configuration: Configuration

    public init(configuration: Configuration, context: StageContext) {
        self.configuration = configuration
    }

    public mutating func process(_ frame: inout Frame) -> StageOutcome {
        guard case .dataURL(let text) = frame.payload else { return .pass }
        switch DataURL.parse(text, allowedMIMETypes: configuration.mimeTypes) {
        case .failure(.notDataURL):
            return reject("not_data_url", "frame does not start with \"data:\" and a comma-separated header (\(Self.preview(text)))")
        case .failure(.notBase64):
            return reject("not_base64", "data URL is not ;base64 encoded")
        case .failure(.mimeTypeNotAllowed(let mime)):
            return reject("mime_not_allowed", "MIME type \"\(mime)\" is not one of \(configuration.mimeTypes)")
        case .success(let url):
            guard let bytes = url.decode() else {
                return reject("bad_base64", "payload of \(url.base64.utf8.count) characters is not strict base64")
            }
            frame.jpeg = bytes
            return .pass
        }
    }

    private func reject(_ code: String, _ detail: String) -> StageOutcome {
        .reject(Rejection(stage: Self.declaration.name, code: code, detail: detail))
    }

    /// The first characters of a bad payload, safe to log.
    static func preview(_ text: String) -> String {
        let head = text.prefix(24).map { $0.isASCII && !$0.isNewline ? String($0) : "?" }.joined()
        return text.count > 24 ? "\"\(head)…\"" : "\"\(head)\""
    }
}
