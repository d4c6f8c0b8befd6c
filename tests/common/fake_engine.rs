//! A scripted engine for testing the real agent binary: it presents the real engine's certificate (so the
//! device's normal verification passes) and lets the test speak the rstream protocol frame by frame — answer
//! with odd liveness acks, redirect legs, watch what the agent sends.

use std::sync::Arc;
use std::time::Duration;

use async_net::{TcpListener, TcpStream};
use futures_rustls::server::TlsStream;
use futures_rustls::TlsAcceptor;
use rstream::proto::frame::{read_frame, write_frame};
use rstream::proto::rstream::message::Payload;
use rstream::proto::rstream::{
    open_control_channel_rsp, open_tunnel_rsp, some_str, ControlChannelLiveness, Message, OpenControlChannelReq,
    OpenControlChannelRsp, OpenTunnelRsp,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::tls::{within, IO_DEADLINE};
use super::Engine;

/// One accepted TLS connection, with the SNI the client sent.
pub struct Accepted {
    /// The connection.
    pub conn: TlsStream<TcpStream>,
    /// The server name the client asked for.
    pub sni: Option<String>,
}

/// A TLS listener with `engine`'s certificate, offering `rstrm/1`.
pub struct FakeEngine {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    conns: async_channel::Receiver<Accepted>,
    _acceptor: smol::Task<()>,
}

impl FakeEngine {
    /// Listens on an ephemeral loopback port with the certificate and key of `engine`'s state directory.
    pub fn start(engine: &Engine) -> FakeEngine {
        let state = engine.state_dir();
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(state.join("cert.pem")).expect("cert.pem").map(|c| c.unwrap()).collect();
        let key = PrivateKeyDer::from_pem_file(state.join("key.pem")).expect("key.pem");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate");
        config.alpn_protocols = vec![b"rstrm/1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = smol::block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, conns) = async_channel::bounded(16);
        let task = smol::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                if let Ok(conn) = acceptor.accept(tcp).await {
                    let sni = conn.get_ref().1.server_name().map(str::to_owned);
                    if tx.send(Accepted { conn, sni }).await.is_err() {
                        return;
                    }
                }
            }
        });
        FakeEngine { addr, conns, _acceptor: task }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port")
    }

    /// The next connection, within `limit`.
    pub async fn next_conn(&self, limit: Duration) -> Accepted {
        within(limit, "a connection to the fake engine", self.conns.recv()).await.expect("acceptor alive")
    }

    /// Whether a connection is waiting.
    pub fn has_conn(&self) -> bool {
        !self.conns.is_empty()
    }
}

/// Reads the next frame (heartbeats included).
pub async fn next_frame(conn: &mut TlsStream<TcpStream>) -> Payload {
    let msg: Message = within(IO_DEADLINE, "a frame from the agent", read_frame(conn)).await.expect("read frame");
    msg.payload.expect("a payload")
}

/// Reads frames until one that is not a heartbeat.
pub async fn next_message(conn: &mut TlsStream<TcpStream>) -> Payload {
    loop {
        match next_frame(conn).await {
            Payload::Heartbeat(_) => continue,
            other => return other,
        }
    }
}

/// Writes one frame.
pub async fn send_frame(conn: &mut TlsStream<TcpStream>, payload: Payload) {
    within(IO_DEADLINE, "a frame to the agent", write_frame(conn, &Message::new(payload))).await.expect("write");
}

/// Accepts the agent's control channel like a 1.4 engine (echoing its liveness policy with 3 intervals of
/// timeout) and registers its one tunnel as `t-1`; returns the channel and the agent's open request.
pub async fn accept_agent(fake: &FakeEngine) -> (TlsStream<TcpStream>, OpenControlChannelReq) {
    let mut control = fake.next_conn(IO_DEADLINE).await.conn;
    let Payload::OpenControlChannelReq(open) = next_message(&mut control).await else { panic!("expected open") };
    let liveness = open
        .liveness
        .map(|asked| ControlChannelLiveness { heartbeat_timeout_ms: 3 * asked.heartbeat_interval_ms, ..asked });
    let ok = open_control_channel_rsp::Ok { client_id: "c-1".into(), server_details: None, liveness };
    let rsp = OpenControlChannelRsp { result: Some(open_control_channel_rsp::Result::Ok(ok)) };
    send_frame(&mut control, Payload::OpenControlChannelRsp(rsp)).await;
    let Payload::OpenTunnelReq(req) = next_message(&mut control).await else { panic!("expected OpenTunnelReq") };
    let mut props = req.tunnel_properties.unwrap_or_default();
    props.id = some_str("t-1");
    let result = Some(open_tunnel_rsp::Result::TunnelProperties(props));
    send_frame(&mut control, Payload::OpenTunnelRsp(OpenTunnelRsp { request_id: req.request_id, result })).await;
    (control, open)
}
