// A user's package depends on FramepipeServer alone: the public types of
// the targets it is built from (AuthSettings, TrustedProxies, ClusterSettings,
// StreamScope, …, which RelayConfiguration is made of) come with it.
@_exported import Access
@_exported import Cluster
@_exported import Pipeline
@_exported import RelayCore
