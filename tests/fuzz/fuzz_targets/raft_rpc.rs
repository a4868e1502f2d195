//! The metadata quorum's RPC decoders on a frame's payload: the first byte picks the server's
//! request decoder (even) or the client's response decoder (odd); the rest is the payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_controller::wire::{decode_request, decode_response};

fuzz_target!(|data: &[u8]| {
    let Some((&which, payload)) = data.split_first() else {
        return;
    };
    if which % 2 == 0 {
        let _ = decode_request(payload);
    } else {
        let _ = decode_response(payload);
    }
});
