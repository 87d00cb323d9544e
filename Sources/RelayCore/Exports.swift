// The hub carries out what the rules decide; whoever uses the hub speaks the
// rules' types (events, actions, records), so they come with it.
@_exported import RelayRules
