//! The network layer: listeners, connections, frames and responses. It serves any
//! [`Service`]; the request handlers plug in from above.

pub mod connection;
pub mod frame;
pub mod listener;
pub mod response;
pub mod service;

pub use connection::{ConnectionInfo, ConnectionLimits};
pub use frame::RequestFrame;
pub use service::{Outcome, Pending, Service};
