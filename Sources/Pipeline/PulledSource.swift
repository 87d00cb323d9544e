import Foundation

/// One entry of `"sources"`: a camera the relay fetches itself, published
/// as the stream `streamID`.
///
/// It exists because a hospital's IP cameras serve MJPEG over HTTP and
/// push nowhere: the relay goes to them. The URL never carries a password
/// (the loader refuses one, since URLs are logged and listed); credentials
/// name a file or an environment variable, read again at each connection
/// so a rotated secret needs no reload.
public struct PulledSource: Sendable, Equatable {
    public let streamID: String
    /// Without user information; safe to log and to show in the API.
    public let url: String
    public let credentials: Credentials?
    /// No frame for this long and the source is lost: the connection is dropped and tried again.
    public let stallTimeout: Duration
    /// A camera that answers one `image/jpeg` per request is asked again at this interval.
    public let pollInterval: Duration
    /// Reconnection waits grow from `retryMin` to `retryMax` (with jitter).
    public let retryMin: Duration
    public let retryMax: Duration

    public init(streamID: String, url: String, credentials: Credentials? = nil, stallTimeout: Duration = .seconds(5),
                pollInterval: Duration = .seconds(1), retryMin: Duration = .seconds(1), retryMax: Duration = .seconds(30)) {
        self.streamID = streamID
        self.url = url
        self.credentials = credentials
        self.stallTimeout = stallTimeout
        self.pollInterval = pollInterval
        self.retryMin = retryMin
        self.retryMax = retryMax
    }

    /// Where a camera's `user:password` is kept.
    public enum Credentials: Sendable, Equatable, CustomStringConvertible {
        case file(String)
        case environment(String)

        public var description: String {
            switch self {
            case .file(let path): "file \(path)"
            case .environment(let name): "environment variable \(name)"
            }
        }

        /// The `user:password` it holds now, or why it cannot be used.
        public func read(environment: [String: String] = ProcessInfo.processInfo.environment) -> Result<String, Unreadable> {
            let text: String
            switch self {
            case .file(let path):
                guard let data = FileManager.default.contents(atPath: path) else {
                    return .failure(Unreadable(reason: FileManager.default.fileExists(atPath: path) ? "cannot read \(path)" : "no such file \(path)"))
                }
                text = String(decoding: data, as: UTF8.self)
            case .environment(let name):
                guard let value = environment[name] else { return .failure(Unreadable(reason: "environment variable \(name) is not set")) }
                text = value
            }
            let secret = text.trimmingCharacters(in: .whitespacesAndNewlines)
            // The secret itself is never part of a reason.
            guard let colon = secret.firstIndex(of: ":"), colon != secret.startIndex, !secret.contains("\n") else {
                return .failure(Unreadable(reason: "the \(self) must hold one line user:password"))
            }
            return .success(secret)
        }

        public struct Unreadable: Error, Equatable {
            public let reason: String
        }
    }
}
