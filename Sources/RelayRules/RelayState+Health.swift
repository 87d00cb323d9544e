import Pipeline

/// Stream health: the stages' events (`StageEvent`) as the relay's rules
/// treat them. One current state per kind and stream; only a change is
/// told; a viewer that arrives later hears every state that is not `ok`
/// right after it learns of the stream.
extension RelayState {
    package mutating func streamHealth(_ id: String, _ event: StageEvent) -> [RelayAction] {
        guard let stream = streams[id], !shuttingDown else { return [] }
        let previous = stream.health[event.kind]
        // A kind nobody flagged is ok already; the same state again is no news.
        if previous?.state == event.state || (previous == nil && event.isOK) { return [] }
        streams[id]!.health[event.kind] = event
        let told = stream.started ? watchers(of: id) : []
        let message = WireMessage.streamHealth(id, event)
        var actions: [RelayAction] = told.map { .control(viewer: $0, text: message) }
        actions.append(.metric(.streamHealth(kind: event.kind, state: event.state)))
        actions.append(.log(event.isOK ? .notice : .warning, event.isOK ? "stream health recovered" : "stream health problem", [
            "stream_id": "\(id)", "kind": "\(event.kind)", "state": "\(event.state)", "previous": "\(previous?.state ?? StageEvent.ok)",
            "viewers_told": "\(told.count)",
        ]))
        // The node serving the stream tells the other nodes and the webhooks; they do not repeat it.
        if stream.isLocal { actions += [.cluster(.streamHealth(id, event)), .event(.streamHealth(stream: id, event: event))] }
        return actions
    }

    /// Another node's stream changed health; ignored unless `node` still serves it.
    package mutating func remoteHealth(_ id: String, by node: String, _ event: StageEvent) -> [RelayAction] {
        guard streams[id]?.owner == node else { return [] }
        return streamHealth(id, event)
    }

    /// What a viewer that just learnt of stream `id` is told of its health: every state but `ok`.
    func healthMessages(of id: String, to viewer: String) -> [RelayAction] {
        Self.healthMessages(streams[id]?.health ?? [:], of: id, to: viewer)
    }

    /// The same for a stream record not (or no longer) in `streams`, as `markStarted` holds it.
    static func healthMessages(_ health: [String: StageEvent], of id: String, to viewer: String) -> [RelayAction] {
        health.keys.sorted().compactMap { kind in
            health[kind]!.isOK ? nil : .control(viewer: viewer, text: WireMessage.streamHealth(id, health[kind]!))
        }
    }
}
