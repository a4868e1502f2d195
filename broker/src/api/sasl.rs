//! SaslHandshake and SaslAuthenticate once authentication is over: on a listener without SASL,
//! or on a connection that has already authenticated (re-authentication, KIP-368, is not
//! offered: the session lifetime sent is 0), Kafka answers ILLEGAL_SASL_STATE. The exchange
//! itself runs in the network layer before requests reach this table
//! (`server::authentication`).

use std::sync::Arc;

use kafka_core::ErrorCode;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{ready, Pending, RequestContext};
use crate::context::Context;

pub fn sasl_handshake(
    _ctx: &Arc<Context>,
    rc: RequestContext,
    _request: SaslHandshakeRequest,
) -> Pending {
    let code = ErrorCode::ILLEGAL_SASL_STATE;
    let body = SaslHandshakeResponse::default().with_error_code(code.code());
    ready(rc.respond(&body, code))
}

pub fn sasl_authenticate(
    _ctx: &Arc<Context>,
    rc: RequestContext,
    _request: SaslAuthenticateRequest,
) -> Pending {
    let code = ErrorCode::ILLEGAL_SASL_STATE;
    let body = SaslAuthenticateResponse::default()
        .with_error_code(code.code())
        .with_error_message(Some(StrBytes::from_static_str(
            "SaslAuthenticate request received outside SASL authentication",
        )));
    ready(rc.respond(&body, code))
}
