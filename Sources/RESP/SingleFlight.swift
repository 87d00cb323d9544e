import NIOConcurrencyHelpers

/// Runs one operation at a time: a caller that arrives while it runs shares
/// its outcome instead of starting another. It exists for reading a Redis
/// Cluster's shards again: in a failover every command in flight meets the
/// moved slot or the lost primary at once, and each asking the cluster for
/// its shards on a connection of its own would only add load where the
/// cluster is busiest.
public final class SingleFlight: Sendable {
    private let running = NIOLockedValueBox<Task<Void, any Error>?>(nil)

    public init() {}

    /// The operation in flight, or `operation` started now; `joined` says
    /// which. Synchronous, so which callers share one run is decided by
    /// call order alone.
    public func flight(_ operation: @escaping @Sendable () async throws -> Void) -> (task: Task<Void, any Error>, joined: Bool) {
        running.withLockedValue { running in
            if let running { return (running, true) }
            let task = Task {
                // Under the same lock, so a caller sees this run until it has ended.
                defer { self.running.withLockedValue { $0 = nil } }
                try await operation()
            }
            running = task
            return (task, false)
        }
    }

    /// Waits for the operation in flight, or runs `operation`.
    public func run(_ operation: @escaping @Sendable () async throws -> Void) async throws {
        try await flight(operation).task.value
    }
}
