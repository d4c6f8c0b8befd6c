//! The agent's leg of one stream: a new engine connection that starts with `ProxyReq`.
//!
//! The token of a leg is not the context token but the stream's one-time `secret` from its `ProxyConnReq`.
//! `zero_rtt` is set, as upstream does by default: the engine sends no `ProxyRsp`, raw bytes follow at once.
//! The connection itself comes from the [`LegPool`], handshaken ahead of time when streams arrive in bursts, or,
//! for a redirected stream, is dialed to the engine the redirect names ([`EngineEndpoint::redirected`]).

use std::io;
use std::sync::Arc;

use super::handler::StreamInfo;
use super::leg_pool::LegPool;
use crate::proto::frame::write_frame;
use crate::proto::rstream::{message::Payload, ClientDetails, Message, ProxyReq, ALPN_RSTRM};
use crate::secret::Secret;
use crate::transport::{EngineEndpoint, TlsStream};

/// Takes an engine connection from `legs` (or dials `redirect`, an engine address, trusted as `control` is)
/// and claims stream `info.stream_id` with `secret` on it; returns the raw byte stream.
pub(crate) async fn open_leg(
    legs: &Arc<LegPool>,
    control: &EngineEndpoint,
    info: &StreamInfo,
    secret: Secret,
    redirect: Option<&str>,
) -> io::Result<TlsStream> {
    let mut tls = match redirect {
        None => legs.take().await?,
        Some(addr) => control.redirected(addr)?.connect(ALPN_RSTRM).await?,
    };
    let req = ProxyReq {
        client_details: Some(ClientDetails::this_binary(secret.expose())),
        stream_id: info.stream_id.clone(),
        zero_rtt: Some(true.into()),
    };
    write_frame(&mut tls, &Message::new(Payload::ProxyReq(req))).await?;
    Ok(tls)
}
