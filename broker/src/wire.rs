//! The broker's wire-level building blocks that the hot-path benchmarks measure on their own:
//! response encoding (a body, or a fetch response around file regions) and the zero-copy send.

pub use crate::api::{encode_fetch_response, FetchPartitionRecords};
pub use crate::server::response::{encode, Chunk, EncodeError, Response};
pub use crate::zerocopy::send_region;
