//! The broker's wire-level building blocks that benchmarks and fuzz targets drive on their own:
//! request decoding as the server does it, response encoding (a body, or a fetch response
//! around file regions) and the zero-copy send.

pub use crate::api::{
    decode_request, encode_fetch_response, DecodedRequest, FetchPartitionRecords,
    RequestDecodeError,
};
pub use crate::server::frame::FrameError;
pub use crate::server::response::{encode, Chunk, EncodeError, Response};
pub use crate::zerocopy::send_region;
