//! The TLS 1.3 client every device and operator uses to reach the engine (embedded-tls, no tokio).
//!
//! embedded-tls's `TlsConnection` borrows its two record buffers and reads/writes through `async fn(&mut self)`,
//! so it cannot sit inside a poll-based `AsyncRead + AsyncWrite` type by itself. Each [`TlsStream`] therefore
//! owns one small task (a *session*) that owns the record buffers, the connection and the TCP socket, performs
//! the handshake, `split()`s the connection, and pumps both directions through two bounded in-memory pipes:
//!
//! ```text
//!   user ──write──▶ pipe (PIPE_LEN) ──▶ TlsWriter ──▶ TCP        memory per stream: 2 record buffers
//!   user ◀──read─── pipe (PIPE_LEN) ◀── TlsReader ◀── TCP        + 2 pipes, nothing else grows
//! ```
//!
//! Decrypted bytes go straight from the record buffer into the pipe (no third buffer). A full pipe stalls the
//! pump, which stops reading the socket: backpressure end to end. Dropping the stream cancels the session.
//!
//! Closing, and what embedded-tls 0.19 can and cannot do:
//! - `close()` on the write side flushes the last record and shuts the TCP write half (FIN) while reads go on.
//!   embedded-tls can only send `close_notify` by consuming the whole connection, so a half-close is a bare FIN;
//!   rustls peers report it as `UnexpectedEof`, which the engine treats as the end of that direction. When the
//!   read side has already ended with a FIN, closing sends a proper `close_notify` instead.
//! - A peer FIN at a record boundary reads as EOF and writes keep working (a half-close from the engine).
//!   A FIN in the middle of a record is an error (truncation).
//! - A peer `close_notify` reads as EOF, but embedded-tls then refuses further writes on the connection, so
//!   writes fail with `BrokenPipe`. Peers that want to half-close towards us should send a FIN, not close_notify.
//!
//! The server is always authenticated ([`super::tls_verify`]: a chain that verifies, then a CertificateVerify by
//! its leaf's key; a handshake without both fails) unless `insecure_skip_verify` is set explicitly, which logs a
//! warning once per process. There is no built-in root store: a CA file is required.

use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::task::{ready, Context, Poll};

use async_net::TcpStream;
use embedded_io_async::BufRead as _;
use embedded_tls::{
    CryptoProvider, CryptoRngCore, TlsConfig, TlsConnection, TlsContext, TlsError, TlsReader, TlsVerifier, TlsWriter,
};
use futures_lite::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use futures_lite::{AsyncRead, AsyncWrite, Stream};
use rand_core::OsRng;

use super::pem::certificates_from_pem;
use super::tls_thread::spawn_session;
use super::tls_verify::{EngineVerifier, Suite};
use crate::limits::{DIAL_TIMEOUT, PIPE_LEN, TLS_READ_RECORD_LEN, TLS_WRITE_RECORD_LEN};

/// How the client authenticates the engine.
#[derive(Clone, Debug, Default)]
pub struct ClientTlsConfig {
    /// Name sent as SNI and verified against the certificate's DNS names.
    pub server_name: String,
    /// PEM file contents holding the trusted CA certificate(s).
    pub ca_pem: Option<Vec<u8>>,
    /// Skip certificate verification (explicit opt-out only; warns once per process).
    pub insecure_skip_verify: bool,
}

/// Trust decided before any byte is sent.
enum Trust {
    Anchors(Vec<Vec<u8>>),
    Insecure,
}

impl ClientTlsConfig {
    fn trust(&self) -> io::Result<Trust> {
        if self.insecure_skip_verify {
            static WARN: Once = Once::new();
            WARN.call_once(|| {
                log_warn!(
                    "TLS certificate verification is DISABLED (insecure_skip_verify): the engine is not authenticated"
                )
            });
            return Ok(Trust::Insecure);
        }
        if self.server_name.parse::<std::net::IpAddr>().is_ok() {
            return Err(invalid_input(format!(
                "TLS server name {:?} is an IP address: certificates are verified against DNS names only; set \
                 transport.tls.serverName in the context (e.g. localhost)",
                self.server_name
            )));
        }
        let pem = self.ca_pem.as_deref().ok_or_else(|| {
            invalid_input(format!(
                "no CA to verify the engine {:?}: set transport.tls.caFile in the context (or, insecurely, \
                 transport.tls.insecureSkipVerify: true)",
                self.server_name
            ))
        })?;
        let anchors = certificates_from_pem(pem).map_err(|e| invalid_input(format!("CA file: {e}")))?;
        Ok(Trust::Anchors(anchors))
    }
}

/// Opens a TLS 1.3 session over `tcp`, offering ALPN `alpn`, within [`DIAL_TIMEOUT`].
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use futures_lite::AsyncWriteExt;
/// use rstream::transport::{connect_tls, ClientTlsConfig};
/// let tcp = async_net::TcpStream::connect("localhost:8443").await?;
/// let cfg = ClientTlsConfig { server_name: "localhost".into(), ca_pem: Some(std::fs::read("ca.pem")?), ..Default::default() };
/// let mut tls = connect_tls(tcp, &cfg, "http/1.1").await?;
/// tls.write_all(b"GET /api/auth HTTP/1.1\r\nHost: localhost\r\n\r\n").await?;
/// # Ok(()) }
/// ```
pub async fn connect_tls(tcp: TcpStream, cfg: &ClientTlsConfig, alpn: &str) -> io::Result<TlsStream> {
    let trust = cfg.trust()?;
    let (from_engine, to_user) = piper::pipe(PIPE_LEN);
    let (from_user, to_engine) = piper::pipe(PIPE_LEN);
    let (ready_tx, ready_rx) = async_channel::bounded(1);
    let (done_tx, write_done) = async_channel::bounded(1);
    let faults = Arc::new(Faults::default());
    let session = Session { server_name: cfg.server_name.clone(), alpn: alpn.to_owned(), trust };
    let session_faults = faults.clone();
    let task = spawn_session(move || session.run(tcp, ready_tx, to_user, from_user, done_tx, session_faults)).await?;
    let server = cfg.server_name.clone();
    let ready = async { ready_rx.recv().await.unwrap_or_else(|_| Err(io::Error::other("TLS session ended"))) };
    let peer_certificate =
        crate::deadline::with_deadline(DIAL_TIMEOUT, format!("TLS handshake with {server}"), ready).await?;
    Ok(TlsStream {
        from_engine,
        to_engine: Some(to_engine),
        write_done: Box::pin(write_done),
        faults,
        peer_certificate,
        _session: task,
    })
}

/// An open TLS session to the engine: `AsyncRead + AsyncWrite + Unpin + Send + 'static`.
///
/// Writes are encrypted and sent as soon as the session drains them (no explicit flush needed); `close()` ends
/// the write direction (see the module docs) and waits until the last record left; dropping aborts.
pub struct TlsStream {
    from_engine: piper::Reader,
    to_engine: Option<piper::Writer>,
    write_done: Pin<Box<async_channel::Receiver<()>>>,
    faults: Arc<Faults>,
    peer_certificate: Option<Vec<u8>>,
    _session: smol::Task<()>,
}

impl TlsStream {
    /// The engine's leaf certificate (DER) as verified in the handshake; `None` when verification was
    /// disabled (`insecure_skip_verify`).
    pub fn peer_certificate(&self) -> Option<&[u8]> {
        self.peer_certificate.as_deref()
    }
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream").field("write_open", &self.to_engine.is_some()).finish()
    }
}

impl TlsStream {
    /// Reads from `src` straight into the session's outgoing pipe, with no buffer of its own (the splice of a
    /// leg to a local service). `Ready(Ok(0))` is the end of `src`.
    pub(crate) fn poll_fill_from<R>(&mut self, cx: &mut Context<'_>, src: &mut R) -> Poll<io::Result<usize>>
    where
        R: AsyncRead + Unpin + ?Sized,
    {
        let Some(pipe) = self.to_engine.as_mut() else {
            return Poll::Ready(Err(written_after_close()));
        };
        if !ready!(pipe.poll(cx)) {
            return Poll::Ready(Err(self.faults.write_end()));
        }
        let n = ready!(Pin::new(src).poll_read(cx, pipe.write_buf(PIPE_LEN)))?;
        if n > 0 {
            pipe.produced(n);
        }
        Poll::Ready(Ok(n))
    }

    /// Writes decrypted bytes from the session's incoming pipe straight into `dst`, with no buffer of its own.
    /// `Ready(Ok(0))` is the engine's end of the stream.
    pub(crate) fn poll_drain_into<W>(&mut self, cx: &mut Context<'_>, dst: &mut W) -> Poll<io::Result<usize>>
    where
        W: AsyncWrite + Unpin + ?Sized,
    {
        if !ready!(self.from_engine.poll(cx)) {
            return Poll::Ready(self.faults.read_end());
        }
        let n = ready!(Pin::new(dst).poll_write(cx, self.from_engine.peek_buf()))?;
        if n == 0 {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "the local side stopped accepting bytes",
            )));
        }
        self.from_engine.consume(n);
        Poll::Ready(Ok(n))
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.from_engine).poll_read(cx, buf) {
            Poll::Ready(Ok(0)) if !buf.is_empty() => Poll::Ready(this.faults.read_end()),
            other => other,
        }
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(pipe) = this.to_engine.as_mut() else {
            return Poll::Ready(Err(written_after_close()));
        };
        match Pin::new(pipe).poll_write(cx, buf) {
            Poll::Ready(Ok(0)) if !buf.is_empty() => Poll::Ready(Err(this.faults.write_end())),
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The session flushes a record whenever it has drained the pipe.
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.to_engine = None;
        match self.write_done.as_mut().poll_next(cx) {
            Poll::Ready(_) => Poll::Ready(self.faults.write.take().map_or(Ok(()), Err)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Errors of the pumps, handed to the user once the pipe ends (pipes can only say "EOF").
#[derive(Default)]
struct Faults {
    read: FaultSlot,
    write: FaultSlot,
}

impl Faults {
    /// What a read that found the incoming pipe ended returns: the session's read error, else EOF.
    fn read_end(&self) -> io::Result<usize> {
        self.read.take().map_or(Ok(0), Err)
    }

    /// Why the outgoing pipe no longer takes bytes: the session's write error, else a closed session.
    fn write_end(&self) -> io::Error {
        self.write
            .take()
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "TLS session to the engine is closed"))
    }
}

/// The error of a write after `close()`.
fn written_after_close() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "TLS stream written after close")
}

#[derive(Default)]
struct FaultSlot(Mutex<Option<io::Error>>);

impl FaultSlot {
    fn set(&self, e: io::Error) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }

    fn take(&self) -> Option<io::Error> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// What the session needs to run the handshake.
struct Session {
    server_name: String,
    alpn: String,
    trust: Trust,
}

impl Session {
    async fn run(
        self,
        tcp: TcpStream,
        ready: async_channel::Sender<io::Result<Option<Vec<u8>>>>,
        to_user: piper::Writer,
        from_user: piper::Reader,
        done: async_channel::Sender<()>,
        faults: Arc<Faults>,
    ) {
        let mut read_record = vec![0u8; TLS_READ_RECORD_LEN];
        let mut write_record = vec![0u8; TLS_WRITE_RECORD_LEN];
        let alert = Arc::new(AtomicU16::new(0));
        let mut conn: TlsConnection<'_, RecordSocket, Suite> =
            TlsConnection::new(RecordSocket::new(tcp, alert.clone()), &mut read_record, &mut write_record);
        let opened = self.handshake(&mut conn, &alert).await;
        let failed = opened.is_err();
        if ready.send(opened).await.is_err() || failed {
            return;
        }
        let peer_finished = AtomicBool::new(false);
        let (reader, writer) = conn.split();
        let (_, notify) = futures_lite::future::zip(
            pump_in(reader, to_user, &faults, &peer_finished),
            pump_out(writer, from_user, &faults, &peer_finished, done),
        )
        .await;
        if let Some(done) = notify {
            // Both directions ended cleanly and the peer never sent close_notify: say goodbye properly.
            let _ = conn.close().await;
            drop(done);
        }
    }

    /// Runs the handshake; returns the verified leaf certificate (none when verification is disabled).
    async fn handshake(
        &self,
        conn: &mut TlsConnection<'_, RecordSocket, Suite>,
        alert: &AtomicU16,
    ) -> io::Result<Option<Vec<u8>>> {
        let alpns = [self.alpn.as_bytes()];
        let config = TlsConfig::new().with_server_name(&self.server_name).with_alpn(&alpns);
        let (result, verdict) = match &self.trust {
            Trust::Insecure => {
                let mut crypto = EngineCrypto { verifier: None };
                (conn.open(TlsContext::new(&config, &mut crypto)).await, None)
            }
            Trust::Anchors(anchors) => {
                let mut crypto = EngineCrypto { verifier: Some(EngineVerifier::new(anchors)) };
                let result = conn.open(TlsContext::new(&config, &mut crypto)).await;
                (result, crypto.verifier.map(|v| (v.failure().map(str::to_owned), v.authenticated_leaf())))
            }
        };
        let plaintext_alert = match alert.load(Ordering::Relaxed) {
            0 => None,
            a => Some(a as u8),
        };
        let fail = |e, why| handshake_error(e, why, plaintext_alert, &self.server_name, &self.alpn);
        match (result, verdict) {
            (Ok(()), None) => Ok(None), // insecure_skip_verify: nothing was meant to be verified
            (Ok(()), Some((_, Ok(leaf)))) => Ok(Some(leaf)),
            // embedded-tls finished a handshake in which the server did not authenticate itself: refused.
            (Ok(()), Some((_, Err(why)))) => Err(fail(TlsError::InvalidCertificate, Some(why))),
            (Err(e), verdict) => Err(fail(e, verdict.and_then(|(refused, _)| refused))),
        }
    }
}

/// Engine → user: decrypted records straight into the pipe. Yields to the TLS thread's other sessions after
/// each record, so a busy stream cannot starve their handshakes (sockets that are always ready never make a
/// future return `Pending` by themselves).
async fn pump_in(
    mut reader: TlsReader<'_, RecordSocket, Suite>,
    mut to_user: piper::Writer,
    faults: &Faults,
    peer_finished: &AtomicBool,
) {
    loop {
        let step = match reader.fill_buf().await {
            Ok(data) => Ok(to_user.write(data).await),
            Err(e) => Err(e),
        };
        match step {
            Ok(Ok(n)) if n > 0 => {
                reader.consume(n);
                futures_lite::future::yield_now().await;
            }
            Ok(_) => return,                           // the user dropped its side
            Err(TlsError::ConnectionClosed) => return, // close_notify
            Err(_) if reader.as_ref().clean_eof => return peer_finished.store(true, Ordering::Release),
            Err(e) => return faults.read.set(session_error(e, "reading from")),
        }
    }
}

/// User → engine: pipe bytes into records, flushed whenever the pipe runs dry, yielding after each write like
/// [`pump_in`]. Returns the close signal when the caller should end with a `close_notify` (peer already
/// finished) instead of a FIN.
async fn pump_out(
    mut writer: TlsWriter<'_, RecordSocket, Suite>,
    mut from_user: piper::Reader,
    faults: &Faults,
    peer_finished: &AtomicBool,
    done: async_channel::Sender<()>,
) -> Option<async_channel::Sender<()>> {
    use embedded_io_async::Write as _;
    loop {
        let written = match from_user.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(data) => writer.write(data).await,
        };
        let flushed = match written {
            Ok(n) => {
                from_user.consume(n);
                if from_user.is_empty() {
                    writer.flush().await
                } else {
                    Ok(())
                }
            }
            Err(e) => Err(e),
        };
        if let Err(e) = flushed {
            faults.write.set(session_error(e, "writing to"));
            return None;
        }
        futures_lite::future::yield_now().await;
    }
    if let Err(e) = writer.flush().await {
        faults.write.set(session_error(e, "writing to"));
        return None;
    }
    if peer_finished.load(Ordering::Acquire) {
        return Some(done);
    }
    let _ = writer.as_ref().tcp.shutdown(Shutdown::Write);
    None
}

/// The crypto provider: OS randomness, and a verifier unless verification was explicitly disabled.
struct EngineCrypto<'a> {
    verifier: Option<EngineVerifier<'a>>,
}

impl CryptoProvider for EngineCrypto<'_> {
    type CipherSuite = Suite;
    type Signature = p256::ecdsa::DerSignature;

    fn rng(&mut self) -> impl CryptoRngCore {
        OsRng
    }

    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<Suite>, TlsError> {
        self.verifier.as_mut().ok_or(TlsError::Unimplemented)
    }
}

/// The TCP socket as embedded-io, following the TLS record framing: a FIN between records reads as a clean EOF,
/// and a plaintext alert the server sends during the handshake (e.g. "no application protocol") is remembered so
/// the failure can be explained (embedded-tls itself only reports `InvalidRecord`).
#[derive(Clone)]
struct RecordSocket {
    tcp: TcpStream,
    header: [u8; 5],
    header_len: usize,
    body_left: usize,
    body_pos: usize,
    clean_eof: bool,
    /// `0x100 | description` of the last plaintext alert seen, 0 if none (shared by the clones).
    alert: Arc<AtomicU16>,
}

/// TLS record content type of alerts.
const CONTENT_ALERT: u8 = 21;

impl RecordSocket {
    fn new(tcp: TcpStream, alert: Arc<AtomicU16>) -> Self {
        RecordSocket { tcp, header: [0; 5], header_len: 0, body_left: 0, body_pos: 0, clean_eof: false, alert }
    }

    /// Follows the record framing over bytes just read.
    fn observe(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let take = self.body_left.min(bytes.len());
                if self.header[0] == CONTENT_ALERT && self.body_pos <= 1 && self.body_pos + take > 1 {
                    self.alert.store(0x100 | bytes[1 - self.body_pos] as u16, Ordering::Relaxed);
                }
                self.body_left -= take;
                self.body_pos += take;
                bytes = &bytes[take..];
            } else {
                let take = (5 - self.header_len).min(bytes.len());
                self.header[self.header_len..self.header_len + take].copy_from_slice(&bytes[..take]);
                self.header_len += take;
                bytes = &bytes[take..];
                if self.header_len == 5 {
                    self.body_left = u16::from_be_bytes([self.header[3], self.header[4]]) as usize;
                    self.body_pos = 0;
                    self.header_len = 0;
                }
            }
        }
    }
}

impl embedded_io::ErrorType for RecordSocket {
    type Error = io::Error;
}

impl embedded_io_async::Read for RecordSocket {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, io::Error> {
        let n = self.tcp.read(buf).await?;
        if n == 0 && !buf.is_empty() {
            self.clean_eof = self.header_len == 0 && self.body_left == 0;
        }
        self.observe(&buf[..n]);
        Ok(n)
    }
}

impl embedded_io_async::Write for RecordSocket {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, io::Error> {
        self.tcp.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), io::Error> {
        self.tcp.flush().await
    }
}

/// An `InvalidInput` error with `msg`.
pub(super) fn invalid_input(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// A handshake failure, explained.
fn handshake_error(e: TlsError, failure: Option<String>, alert: Option<u8>, server: &str, alpn: &str) -> io::Error {
    use embedded_tls::alert::AlertDescription as A;
    // Alert numbers (RFC 8446 §6): what a server answers to a ClientHello it cannot serve.
    const HANDSHAKE_FAILURE: u8 = 40;
    const PROTOCOL_VERSION: u8 = 70;
    const UNRECOGNIZED_NAME: u8 = 112;
    const NO_APPLICATION_PROTOCOL: u8 = 120;
    let alert = match e {
        TlsError::HandshakeAborted(_, A::NoApplicationProtocol) => Some(NO_APPLICATION_PROTOCOL),
        TlsError::HandshakeAborted(_, A::HandshakeFailure) => Some(HANDSHAKE_FAILURE),
        _ => alert,
    };
    let (kind, why) = match (e, failure, alert) {
        (_, Some(failure), _) => (io::ErrorKind::InvalidData, failure),
        (_, None, Some(NO_APPLICATION_PROTOCOL)) => {
            (io::ErrorKind::InvalidData, format!("the server does not speak ALPN {alpn:?}"))
        }
        (_, None, Some(HANDSHAKE_FAILURE | PROTOCOL_VERSION)) => (
            io::ErrorKind::InvalidData,
            "the server refused the handshake (it must accept TLS 1.3 with AES-128-GCM and a P-256 key share)".into(),
        ),
        (_, None, Some(UNRECOGNIZED_NAME)) => {
            (io::ErrorKind::InvalidData, format!("the server does not serve the name {server:?}"))
        }
        (_, None, Some(other)) => (io::ErrorKind::InvalidData, format!("the server sent TLS alert {other}")),
        (TlsError::InvalidRecord, None, None) => (
            io::ErrorKind::InvalidData,
            format!(
                "the server aborted the handshake after its hello (an encrypted alert; most often no common ALPN \
                 protocol: this client offered {alpn:?})"
            ),
        ),
        (TlsError::Io(kind), None, None) => (kind.into(), format!("connection error ({kind:?})")),
        (TlsError::IoError, None, None) => (io::ErrorKind::UnexpectedEof, "the server closed the connection".into()),
        (TlsError::HandshakeAborted(_, alert), None, None) => {
            (io::ErrorKind::InvalidData, format!("the server aborted the handshake ({alert:?})"))
        }
        (TlsError::InvalidSignatureScheme, None, None) => (
            io::ErrorKind::InvalidData,
            "the server certificate uses a signature scheme this client cannot verify (ECDSA P-256 only)".into(),
        ),
        (other, None, None) => (io::ErrorKind::InvalidData, format!("{other:?}")),
    };
    io::Error::new(kind, format!("TLS handshake with {server} failed: {why}"))
}

/// An error of an established session.
fn session_error(e: TlsError, verb: &str) -> io::Error {
    match e {
        TlsError::Io(kind) => io::Error::new(kind.into(), format!("TLS session: error {verb} the socket ({kind:?})")),
        TlsError::IoError => io::Error::new(io::ErrorKind::UnexpectedEof, "TLS session: connection cut mid-record"),
        TlsError::MissingHandshake => io::Error::new(
            io::ErrorKind::BrokenPipe,
            "TLS session: the peer sent close_notify; no more data can be written on this connection",
        ),
        other => io::Error::new(io::ErrorKind::InvalidData, format!("TLS session: {other:?} {verb} the peer")),
    }
}

#[cfg(all(test, feature = "engine"))]
#[path = "tls_client_tests.rs"]
pub(crate) mod tests;
