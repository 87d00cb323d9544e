import Foundation
import Logging
import Pipeline
import RelayCore

/// `--log-format json`: one JSON object a line on stderr, the metadata as
/// top-level fields (`stream_id`, `viewer_id`, …), for Loki, Elasticsearch
/// or journald's JSON export to index without parsing prose.
///
/// Each line is written with one `write(2)`, so lines from several threads
/// never interleave.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    /// Where lines go; stderr unless a test collects them.
    var write: @Sendable (String) -> Void = JSONLogHandler.standardError

    init(label: String, level: Logger.Level, write: @escaping @Sendable (String) -> Void = JSONLogHandler.standardError) {
        self.label = label
        self.logLevel = level
        self.write = write
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        write(Self.line(time: Date(), level: event.level, label: label, message: event.message.description,
                        metadata: metadata.merging(metadataProvider?.get() ?? [:]) { $1 }.merging(event.metadata ?? [:]) { $1 },
                        source: event.source))
    }

    /// One line: `time`, `level`, `message`, `label`, then the metadata
    /// sorted by key. A metadata key that would hide one of those is
    /// prefixed with `meta_`.
    static func line(time: Date, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata,
                     source: String) -> String {
        var members: [(key: String, value: JSONValue)] = [
            ("time", .string(time.formatted(WireMessage.timeStyle))), ("level", .string(level.rawValue)),
            ("message", .string(message)), ("label", .string(label)),
        ]
        let reserved: Set = ["time", "level", "message", "label"]
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            members.append((reserved.contains(key) ? "meta_\(key)" : key, json(value)))
        }
        return JSONValue.object(members).jsonText + "\n"
    }

    private static func json(_ value: Logger.MetadataValue) -> JSONValue {
        switch value {
        case .string(let s): .string(s)
        case .stringConvertible(let c): .string(c.description)
        case .array(let items): .array(items.map(json))
        case .dictionary(let d): .object(d.sorted { $0.key < $1.key }.map { ($0.key, json($0.value)) })
        }
    }

    @Sendable static func standardError(_ line: String) {
        var bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { Foundation.write(2, $0.baseAddress! + offset, $0.count - offset) }
            if written <= 0 { return }
            offset += written
        }
    }
}
