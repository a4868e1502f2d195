//! The RPC layer between quorum members: framing, the message set, the client side (one
//! persistent multiplexed connection per peer, openraft's `RaftNetwork`), the server, and TLS
//! on both ends when the embedding process provides it.

pub(crate) mod client;
pub(crate) mod frame;
pub(crate) mod messages;
pub(crate) mod server;
pub(crate) mod tls;
