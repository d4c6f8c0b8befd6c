//! Listeners and executor threads: bind the TLS port (and the optional plain-HTTP port), then accept forever,
//! one task per connection on a multi-threaded smol executor.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_net::TcpListener;
use futures_rustls::TlsAcceptor;
use rustls::ServerConfig;
use smol::Executor;

use super::routing::PublicHosts;
use super::{connection, Engine};
use crate::limits::MAX_ENGINE_THREADS;

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

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
            let (engine, ex2) = (Arc::clone(&engine), Arc::clone(&ex));
            ex.spawn(accept_loop(http, ex2, move |tcp, peer| connection::serve_plain(Arc::clone(&engine), tcp, peer)))
                .detach();
        }
        let ex2 = Arc::clone(&ex);
        smol::block_on(ex.run(accept_loop(tls, ex2, move |tcp, peer| {
            connection::serve_tls(Arc::clone(&engine), acceptor.clone(), tcp, peer)
        })))
    }
}

async fn accept_loop<F, Fut>(listener: TcpListener, ex: Arc<Executor<'static>>, serve: F) -> !
where
    F: Fn(async_net::TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => ex.spawn(serve(tcp, peer)).detach(),
            Err(e) => {
                log_warn!("accept failed: {e}");
                async_io::Timer::after(ACCEPT_RETRY).await;
            }
        }
    }
}
