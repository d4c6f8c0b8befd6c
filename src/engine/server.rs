//! Listeners and executor threads: bind the TLS port (and the optional plain-HTTP port), then accept forever,
//! one task per admitted connection on a multi-threaded smol executor.
//!
//! At bind the soft `RLIMIT_NOFILE` is raised towards the hard limit (as far as the connection cap can use) and
//! the connection cap is derived from what was granted (`admission::connection_cap`), so a flood meets the cap
//! and is refused at accept instead of making `accept` fail with `EMFILE`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_net::TcpListener;
use futures_rustls::TlsAcceptor;
use rustls::ServerConfig;
use smol::Executor;

use super::admission::{connection_cap, wanted_nofile, Admission, Admitted, Refused};
use super::routing::PublicHosts;
use super::{connection, Engine};
use crate::limits::{MAX_ENGINE_CONNECTIONS, MAX_ENGINE_THREADS};

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// Shortest gap between two warnings about connections refused at the connection cap (a flood would fill the log).
const CAP_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// What `engine serve` was asked to run.
pub struct ServeConfig {
    /// TLS listen address, e.g. `127.0.0.1:8443` (port 0 = pick one).
    pub listen: String,
    /// Optional plain-HTTP listen address for published tunnels.
    pub http_listen: Option<String>,
    /// Public host names (tunnels are `<name>.t.<host>`).
    pub hosts: Vec<String>,
    /// TLS server configuration (certificate, key, ALPN).
    pub tls: Arc<ServerConfig>,
    /// HS256 secret.
    pub secret: Vec<u8>,
    /// How long a dropped tunnel's name stays reserved for its owner.
    pub name_grace: Duration,
    /// The revocation list to honour (`<state>/revoked-tokens`).
    pub revocation_list: Option<std::path::PathBuf>,
    /// Where tunnel names' owners are kept across restarts (`<state>/tunnel-names`).
    pub name_store: Option<std::path::PathBuf>,
}

/// An engine whose listeners are bound, ready to [`run`](BoundEngine::run).
pub struct BoundEngine {
    engine: Arc<Engine>,
    tls: TcpListener,
    http: Option<TcpListener>,
    acceptor: TlsAcceptor,
}

fn bind(addr: &str) -> std::io::Result<TcpListener> {
    smol::block_on(TcpListener::bind(addr))
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

impl BoundEngine {
    /// Binds the listeners described by `config`.
    pub fn bind(config: ServeConfig) -> std::io::Result<BoundEngine> {
        let tls = bind(&config.listen)?;
        let http = config.http_listen.as_deref().map(bind).transpose()?;
        let port = tls.local_addr()?.port();
        let mut engine =
            Engine::new(config.secret, PublicHosts::new(&config.hosts, port)).with_name_grace(config.name_grace);
        if let Some(path) = config.revocation_list {
            engine = engine.with_revocations(super::revocation::RevocationList::new(path));
        }
        if let Some(path) = config.name_store {
            engine.registry.persist_names(super::name_store::NameStore::new(path));
        }
        engine.admission = Admission::new(connection_cap(raise_nofile_limit()));
        let engine = Arc::new(engine);
        Ok(BoundEngine { engine, tls, http, acceptor: TlsAcceptor::from(config.tls) })
    }

    /// The bound TLS address.
    pub fn tls_addr(&self) -> std::io::Result<SocketAddr> {
        self.tls.local_addr()
    }

    /// The bound plain-HTTP address, if any.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The shared engine state.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Accepts connections forever on up to [`MAX_ENGINE_THREADS`] executor threads.
    pub fn run(self) -> ! {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, MAX_ENGINE_THREADS);
        let ex: Arc<Executor<'static>> = Arc::new(Executor::new());
        for i in 1..threads {
            let ex = Arc::clone(&ex);
            let spawned = std::thread::Builder::new()
                .name(format!("engine-{i}"))
                .spawn(move || smol::block_on(ex.run(futures_lite::future::pending::<()>())));
            if let Err(e) = spawned {
                log_warn!("cannot start executor thread {i}: {e}");
            }
        }
        let BoundEngine { engine, tls, http, acceptor } = self;
        if let Some(http) = http {
            let (engine2, ex2) = (Arc::clone(&engine), Arc::clone(&ex));
            let serve = move |tcp, peer, admitted| connection::serve_plain(Arc::clone(&engine2), tcp, peer, admitted);
            ex.spawn(accept_loop(http, Arc::clone(&engine), ex2, serve)).detach();
        }
        let (engine2, ex2) = (Arc::clone(&engine), Arc::clone(&ex));
        let serve = move |tcp, peer, admitted| {
            connection::serve_tls(Arc::clone(&engine2), acceptor.clone(), tcp, peer, admitted)
        };
        smol::block_on(ex.run(accept_loop(tls, engine, ex2, serve)))
    }
}

/// Accepts connections forever; each one the engine admits is served on its own task, the others are closed.
async fn accept_loop<F, Fut>(listener: TcpListener, engine: Arc<Engine>, ex: Arc<Executor<'static>>, serve: F) -> !
where
    F: Fn(async_net::TcpStream, SocketAddr, Admitted) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut last_cap_warning: Option<Instant> = None;
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                log_warn!("accept failed: {e}");
                async_io::Timer::after(ACCEPT_RETRY).await;
                continue;
            }
        };
        match engine.admission.admit(&engine.metrics, peer.ip()) {
            Ok(admitted) => ex.spawn(serve(tcp, peer, admitted)).detach(),
            Err(why @ Refused::SourceBusy(_)) => log_debug!("connection from {peer} refused: {why}"),
            Err(why @ Refused::Full(_)) => {
                if last_cap_warning.is_none_or(|at| at.elapsed() >= CAP_WARNING_INTERVAL) {
                    log_warn!("connection from {peer} refused: {why} (more within {CAP_WARNING_INTERVAL:?} unlogged)");
                    last_cap_warning = Some(Instant::now());
                }
            }
        }
    }
}

/// Raises the soft `RLIMIT_NOFILE` towards the hard limit, as far as [`MAX_ENGINE_CONNECTIONS`] can use, logs
/// what it chose and returns the soft limit now in force.
fn raise_nofile_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let (soft, hard) = (limit.current.unwrap_or(u64::MAX), limit.maximum.unwrap_or(u64::MAX));
    let wanted = wanted_nofile().min(hard);
    let granted = if wanted > soft {
        match setrlimit(Resource::Nofile, Rlimit { current: Some(wanted), maximum: limit.maximum }) {
            Ok(()) => wanted,
            Err(e) => {
                log_warn!("cannot raise the open-files limit from {soft} to {wanted}: {e}");
                soft
            }
        }
    } else {
        soft
    };
    let cap = connection_cap(granted);
    let note = if cap < MAX_ENGINE_CONNECTIONS { " (limited by the open-files limit)" } else { "" };
    log_info!("open-files limit {granted} (was {soft}, hard {hard}): connection cap {cap}{note}");
    granted
}
