//! The embedded Raft metadata quorum: cluster image, controller role, and the local metadata view.
