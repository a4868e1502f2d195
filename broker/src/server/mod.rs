//! The network layer: listeners, connection quotas, authentication, connections, frames and
//! responses. It serves any [`Service`]; the request handlers plug in from above.

pub mod authentication;
pub mod connection;
pub mod frame;
pub mod listener;
pub mod quotas;
pub mod rate;
pub mod response;
pub mod service;

pub use authentication::ListenerAuth;
pub use connection::{ConnectionInfo, ConnectionLimits};
pub use frame::RequestFrame;
pub use quotas::ConnectionQuotas;
pub use service::{LimitEvent, Outcome, Pending, Service};
