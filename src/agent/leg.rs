//! The agent's leg of one stream: a new engine connection that starts with `ProxyReq`.
//!
//! The token of a leg is not the context token but the stream's one-time `secret` from its `ProxyConnReq`.
//! `zero_rtt` is set, as upstream does by default: the engine sends no `ProxyRsp`, raw bytes follow at once.

use std::io;

use super::handler::StreamInfo;
use crate::proto::frame::write_frame;
use crate::proto::rstream::{message::Payload, ClientDetails, Message, ProxyReq, ALPN_RSTRM};
use crate::transport::{EngineEndpoint, TlsStream};

/// Dials the engine and claims stream `info.stream_id` with `secret`; returns the raw byte stream.
pub(crate) async fn open_leg(endpoint: &EngineEndpoint, info: &StreamInfo, secret: String) -> io::Result<TlsStream> {
    let mut tls = endpoint.connect(ALPN_RSTRM).await?;
    let req = ProxyReq {
        client_details: Some(ClientDetails::this_binary(secret)),
        stream_id: info.stream_id.clone(),
        zero_rtt: Some(true.into()),
    };
    write_frame(&mut tls, &Message::new(Payload::ProxyReq(req))).await?;
    Ok(tls)
}
