import Logging

extension Logger {
    /// A copy with one more metadata entry, for `let` loggers captured by tasks.
    package func with(metadataKey key: String, value: Logger.MetadataValue) -> Logger {
        var copy = self
        copy[metadataKey: key] = value
        return copy
    }
}
