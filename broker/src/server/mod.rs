//! The network server: listeners, connections, frames and responses.

pub mod connection;
pub mod frame;
pub mod listener;
pub mod response;
pub mod shutdown;

pub use connection::{ConnectionInfo, ConnectionLimits};
pub use frame::RequestFrame;
pub use response::{Chunk, Response};
pub use shutdown::{Shutdown, ShutdownTrigger};
