import Testing

/// Suites that load the machine (30 fps of 120 KB frames through a debug
/// build) or whose timing is tight (cluster heartbeats every 1/3 s, a
/// 1 s node timeout) run one after the other, never beside each other: a
/// heartbeat missed because the other suite saturated both cores reads as
/// a lost node, and fails a test that is right.
@Suite(.serialized) enum OneAtATime {}
