//! Partition replicas: leader and follower roles, the high watermark, ISR changes, and the
//! fetchers that keep followers in step.

pub mod fetcher;
pub mod manager;
pub mod partition;
pub mod peer_client;
mod repair;

pub use manager::{now_ms, ReplicaManager, RoleListener};
pub use partition::{Partition, ReadParams};
