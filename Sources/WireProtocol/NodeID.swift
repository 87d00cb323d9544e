import Pipeline
/// A cluster node's name: the same alphabet as stream ids, so it can sit in
/// Redis keys, channel names and logs as it is.
public enum NodeID {
    public static func isValid(_ id: String) -> Bool { StreamID.isValid(Substring(id)) }
}
