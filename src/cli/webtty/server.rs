//! `rstream webtty server`: run a WebTTY server: exec and PTY sessions over WebSocket, optional WebDAV
//! sidecar at /fs. Local mode (`--listen`) serves TCP with a bearer token, or TLS 1.3 with `--tls-cert-file`
//! and `--tls-key-file` (builds with feature `engine`); `--rstream` registers a tunnel through the engine and
//! serves every proxied stream the same way.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argh::FromArgs;
use futures_lite::{future, AsyncReadExt};

use super::auth_token;
use crate::agent::{Agent, AgentEvent, EventSink, Retry};
use crate::cli::{refuse_given, CliError, CliResult};
use crate::config;
use crate::limits;
use crate::proto::rstream::opt_str;
use crate::transport::EngineEndpoint;
use crate::webdav::{FsConfig, ProtectedPaths, WebDav};
use crate::webtty::execution::ExecutionMode;
use crate::webtty::gate::{AccessPolicy, LocalHosts};
use crate::webtty::labels::{parse_user_label, server_labels, server_tunnel, ServerFeatures, FS_PATH};
use crate::webtty::policy::{Execution, Orphanage, SessionPolicy, SessionSlots, Shutdown, ShutdownTrigger};
use crate::webtty::server::{serve_listener, Handshake, PlainTcp, WebttyServer};
use crate::webtty::sys::SignalPipe;

/// Exit code when `--login-user` names no user, or one this server cannot switch to.
const STARTUP_CHECK_EXIT: u8 = 2;
/// Where a local server listens when `--listen` is not given.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// run a WebTTY server: exec and PTY sessions over WebSocket, optional WebDAV sidecar at /fs
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "server",
    example = "rstream webtty server --rstream --name pi --label role=codex",
    example = "rstream webtty server --listen 127.0.0.1:8080 --auth-token-file ~/.webtty-token",
    example = "rstream webtty server --listen 127.0.0.1:8080 --allow-unauthenticated",
    example = "rstream webtty server --listen 0.0.0.0:8443 --tls-cert-file cert.pem --tls-key-file key.pem \
               --auth-token-file ~/.webtty-token --fs-root ~/shared",
    example = "rstream webtty server --rstream --name pi --fs-root / --fs-deny /srv/rstream/engine \
               --fs-deny /etc/rstream/jwt-secret",
    example = "sudo rstream webtty server --rstream --name pi --execution-mode login --login-user pi",
    example = "sudo rstream webtty server --rstream --name lab --execution-mode login --login-user ci \
               --allow-client-user",
    note = "Sessions run as this server's OS user (--execution-mode spawn), or with --execution-mode login as \
            --login-user (checked at startup: exit 2 if it does not exist or this server, not root, cannot switch \
            to it) in its home with its passwd shell; a user requested by the client (webtty exec|client --user) \
            is refused in both modes unless --allow-client-user. Each session runs in its own process group under \
            a session supervisor (which keeps the server's identity), with a conservative environment (PATH, \
            LANG/LANGUAGE/LC_*, TZ, TERM, and USER/LOGNAME/SHELL/HOME of the session user, never the server's \
            tokens or agent sockets) and only descriptors 0-2; closing a session kills every process it \
            started. With --tls-cert-file/--tls-key-file the listener \
            speaks TLS 1.3 only (wss:// and https://…/fs on one port; use an ECDSA P-256 certificate for \
            embedded clients); this needs a build with feature engine. The WebDAV sidecar never serves this \
            agent's own secrets, even below --fs-root: its config and ~/.rstream, its token and TLS key files, the \
            engine's default state dir, and every --fs-deny path (refused with 403 by every method, left out of \
            listings, recognised through symlinks, hard links and bind mounts). Environment: \
            RSTREAM_WEBTTY_AUTH_TOKEN.",
    note = "A flag marked \"with --rstream\" or \"not with --rstream\" is refused in the other mode, where it would \
            do nothing."
)]
pub struct ServerCommand {
    /// local address to serve (default 127.0.0.1:8080; not with --rstream)
    #[argh(option)]
    pub listen: Option<String>,
    /// register a tunnel through the engine of the current context instead of listening locally
    #[argh(switch)]
    pub rstream: bool,
    /// tunnel name (with --rstream)
    #[argh(option)]
    pub name: Option<String>,
    /// inventory label key=value, advertised as rstream.webtty.label.<key> (repeatable; with --rstream)
    #[argh(option)]
    pub label: Vec<String>,
    /// publish the tunnel on the engine's public host, token-protected (default with --rstream)
    #[argh(switch)]
    pub publish: bool,
    /// keep the tunnel private, reachable only as rstrm://<name> (with --rstream)
    #[argh(switch)]
    pub no_publish: bool,
    /// reconnect to the engine after a lost connection (default with --rstream)
    #[argh(switch)]
    pub retry: bool,
    /// exit instead of reconnecting when the engine connection is lost (with --rstream)
    #[argh(switch)]
    pub no_retry: bool,
    /// milliseconds between reconnect attempts (upper bound of the backoff; default 5000; with --rstream)
    #[argh(option)]
    pub retry_interval: Option<u64>,
    /// milliseconds running sessions get to end after SIGTERM/SIGINT before the server exits (default 5000)
    #[argh(option, default = "5000")]
    pub shutdown_timeout: u64,
    /// file holding the bearer token local clients must send (or RSTREAM_WEBTTY_AUTH_TOKEN; not with --rstream)
    #[argh(option)]
    pub auth_token_file: Option<PathBuf>,
    /// serve a local listener without a bearer token (loopback addresses only, unless
    /// --i-understand-this-is-open; not with --rstream or --auth-token-file); it answers only requests naming
    /// localhost, a loopback or its own address
    #[argh(switch)]
    pub allow_unauthenticated: bool,
    /// with --allow-unauthenticated: also on a non-loopback address, where anyone who reaches it gets a shell
    #[argh(switch)]
    pub i_understand_this_is_open: bool,
    /// browser origin allowed to open sessions, or * (repeatable; not with --rstream)
    #[argh(option)]
    pub allowed_origin: Vec<String>,
    /// how sessions run: spawn (default; as this server's user) or login (as --login-user, in its home, with
    /// its shell and a trimmed environment; another user than the server's needs root)
    #[argh(option, default = "String::from(\"spawn\")")]
    pub execution_mode: String,
    /// with --execution-mode login: the OS user (name or uid) sessions run as, checked at startup
    #[argh(option)]
    pub login_user: Option<String>,
    /// honour the user a client asks for (webtty exec|client --user); without it such requests are refused
    #[argh(switch)]
    pub allow_client_user: bool,
    /// session transport: websocket
    #[argh(option, default = "String::from(\"websocket\")")]
    pub transport: String,
    /// directory served by the WebDAV sidecar at /fs
    #[argh(option)]
    pub fs_root: Option<PathBuf>,
    /// refuse writes through the sidecar (requires --fs-root)
    #[argh(switch)]
    pub fs_read_only: bool,
    /// largest upload through the sidecar in bytes (default 67108864; requires --fs-root)
    #[argh(option)]
    pub fs_max_upload_size: Option<u64>,
    /// a file or directory the sidecar refuses like its built-in secrets, e.g. an engine --state-dir or
    /// --jwt-secret-file kept elsewhere (repeatable; requires --fs-root)
    #[argh(option)]
    pub fs_deny: Vec<PathBuf>,
    /// serve --listen over TLS 1.3 with this PEM certificate chain (requires --tls-key-file)
    #[argh(option)]
    pub tls_cert_file: Option<PathBuf>,
    /// the PEM private key of --tls-cert-file
    #[argh(option)]
    pub tls_key_file: Option<PathBuf>,
    /// concurrent sessions (default 32); further sessions are refused with an error
    #[argh(option, default = "limits::MAX_WEBTTY_SESSIONS")]
    pub max_sessions: usize,
    /// let a process that leaves its command's session (setsid) outlive the WebTTY session, e.g. an
    /// `rstream forward` started by remote expose (default: a session's end kills everything it started);
    /// advertised as the label rstream.webtty.detach=allowed
    #[argh(switch)]
    pub allow_detach: bool,
}

impl ServerCommand {
    /// Runs the command.
    pub fn run(self) -> CliResult {
        let mut server = self.build_server()?;
        server.sessions.orphans = adopt_orphans();
        if self.allow_detach {
            server.sessions.orphans = server.sessions.orphans.with_detach();
        }
        let grace = Duration::from_millis(self.shutdown_timeout);
        if self.rstream {
            return self.run_rstream(server, grace);
        }
        let listen = self.listen_address();
        let open = self.i_understand_this_is_open;
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => run_local(&listen, server, tls_handshake(cert, key)?, grace, open),
            _ => run_local(&listen, server, PlainTcp, grace, open),
        }
    }

    /// The `--listen` address, or the default.
    fn listen_address(&self) -> String {
        self.listen.clone().unwrap_or_else(|| DEFAULT_LISTEN.into())
    }

    /// Registers the tunnel through the engine of the current context and serves its streams until a signal
    /// (or, with --no-retry, the first lost connection).
    fn run_rstream(&self, mut server: WebttyServer, grace: Duration) -> CliResult {
        if self.retry_interval == Some(0) {
            return Err(CliError::new("--retry-interval must be greater than 0 (milliseconds)"));
        }
        let name = match &self.name {
            Some(name) => name.clone(),
            None => default_name()?,
        };
        let publish = !self.no_publish;
        let tunnel = server_tunnel(&name, publish, self.labels(&server));
        let endpoint = EngineEndpoint::from_context(&config::resolve()?)?;
        let (trigger, shutdown) = Shutdown::new();
        server.sessions.shutdown = shutdown.clone();
        let slots = server.sessions.slots.clone();
        let retry = Retry {
            enabled: !self.no_retry,
            max_interval: self.retry_interval.map(Duration::from_millis),
            ..Retry::default()
        };
        let agent = Agent::new(endpoint, vec![tunnel], server).with_events(log_events()).with_retry(retry);
        smol::block_on(async {
            smol::spawn(watch_signals(trigger)?).detach();
            let agent = async { Err(CliError::new(agent.run().await.to_string())) };
            let stop = async {
                shutdown.wait().await;
                drain_sessions(&slots, grace).await;
                Ok(0)
            };
            future::or(agent, stop).await
        })
    }

    /// Validates the flags into a server.
    fn build_server(&self) -> Result<WebttyServer, CliError> {
        if self.rstream && self.listen.is_some() {
            return Err(CliError::new("--listen and --rstream are mutually exclusive"));
        }
        self.refuse_flags_of_the_other_mode()?;
        match (&self.tls_cert_file, &self.tls_key_file, self.rstream) {
            (None, None, _) | (Some(_), Some(_), false) => {}
            (_, _, true) => {
                return Err(CliError::new(
                    "--tls-cert-file/--tls-key-file are for --listen servers; with --rstream the engine terminates TLS",
                ))
            }
            _ => return Err(CliError::new("--tls-cert-file and --tls-key-file go together")),
        }
        if self.publish && self.no_publish {
            return Err(CliError::new("--publish and --no-publish are mutually exclusive"));
        }
        if self.retry && self.no_retry {
            return Err(CliError::new("--retry and --no-retry are mutually exclusive"));
        }
        let mode: ExecutionMode = self.execution_mode.parse().map_err(CliError::new)?;
        if mode == ExecutionMode::Spawn && self.login_user.is_some() {
            return Err(CliError::new(
                "--login-user requires --execution-mode login: spawn runs sessions as this server's own user",
            ));
        }
        if self.transport != "websocket" {
            return Err(CliError::new(format!("transport {:?} is not supported (websocket)", self.transport)));
        }
        if self.fs_root.is_none() && (self.fs_read_only || self.fs_max_upload_size.is_some()) {
            return Err(CliError::new("--fs-read-only and --fs-max-upload-size require --fs-root"));
        }
        if let Some(denied) = self.fs_deny.first().filter(|_| self.fs_root.is_none()) {
            return Err(CliError::new(format!("--fs-deny {:?} requires --fs-root", denied.display().to_string())));
        }
        if self.fs_deny.iter().any(|p| p.as_os_str().is_empty()) {
            return Err(CliError::new("--fs-deny needs a path (got an empty one)"));
        }
        if self.fs_max_upload_size == Some(0) {
            return Err(CliError::new("--fs-max-upload-size must be greater than 0"));
        }
        if self.max_sessions == 0 {
            return Err(CliError::new("--max-sessions must be at least 1"));
        }
        for label in &self.label {
            parse_user_label(label).map_err(CliError::new)?;
        }
        let fs = match &self.fs_root {
            None => None,
            Some(root) if !root.is_dir() => {
                return Err(CliError::new(format!("--fs-root {:?}: not a directory", root.display().to_string())));
            }
            Some(root) => {
                let config = FsConfig {
                    root: root.clone(),
                    read_only: self.fs_read_only,
                    max_upload: self.fs_max_upload_size.unwrap_or(limits::DEFAULT_FS_MAX_UPLOAD),
                    mount: FS_PATH.to_string(),
                    protected: ProtectedPaths::agent_defaults()
                        .with(self.auth_token_file.iter().chain(&self.tls_key_file).chain(&self.fs_deny).cloned()),
                };
                let dav = WebDav::new(config)
                    .map_err(|e| CliError::new(format!("--fs-root {:?}: {e}", root.display().to_string())))?;
                Some(dav)
            }
        };
        let token = auth_token(self.auth_token_file.as_deref())?;
        if self.rstream && token.is_some() {
            return Err(CliError::new(
                "--auth-token-file / RSTREAM_WEBTTY_AUTH_TOKEN are for local servers; with --rstream the engine \
                 authenticates clients",
            ));
        }
        if !self.rstream && token.is_none() && !self.allow_unauthenticated {
            return Err(CliError::new(
                "a local webtty server needs a bearer token: --auth-token-file FILE or RSTREAM_WEBTTY_AUTH_TOKEN \
                 (or --allow-unauthenticated on a trusted loopback)",
            ));
        }
        if self.i_understand_this_is_open && (!self.allow_unauthenticated || self.rstream || token.is_some()) {
            return Err(CliError::new(
                "--i-understand-this-is-open only widens --allow-unauthenticated on a --listen server without a token",
            ));
        }
        if !self.rstream && token.is_none() {
            let listen = self.listen_address();
            let resolved = std::net::ToSocketAddrs::to_socket_addrs(listen.as_str())
                .map_err(|e| CliError::new(format!("--listen {listen:?}: {e}")))?;
            check_unauthenticated_listen(&listen, resolved.map(|a| a.ip()), self.i_understand_this_is_open)?;
        }
        // Exit 2: the account is wrong on this host (missing, or not one this server can switch to).
        let execution = Execution::new(mode, self.login_user.as_deref(), self.allow_client_user)
            .map_err(|e| CliError::with_code(STARTUP_CHECK_EXIT, e))?;
        let mut allowed_origins = self.allowed_origin.clone();
        if self.rstream {
            allowed_origins.push("*".into()); // the engine is the gate in tunnel mode
        }
        Ok(WebttyServer {
            access: AccessPolicy { token, allowed_origins, hosts: None },
            sessions: SessionPolicy {
                slots: SessionSlots::new(self.max_sessions),
                execution,
                ..SessionPolicy::default()
            },
            fs,
        })
    }

    /// Refuses what the chosen mode would ignore: a local server (`--listen`, the default) has no tunnel to
    /// name, publish, label or reconnect; behind `--rstream` the engine authenticates every client and is the only
    /// origin, so origins and `--allow-unauthenticated` are not this server's to decide; a token file makes the
    /// token required whatever `--allow-unauthenticated` says; and without retrying there is no interval between
    /// attempts.
    fn refuse_flags_of_the_other_mode(&self) -> Result<(), CliError> {
        if self.rstream {
            let local = [
                ("--allowed-origin", !self.allowed_origin.is_empty()),
                ("--allow-unauthenticated", self.allow_unauthenticated),
            ];
            refuse_given(
                &local,
                "is for a local server (--listen); with --rstream the engine authenticates every client and is \
                 its only origin",
            )?;
            let waits = [("--retry-interval", self.no_retry && self.retry_interval.is_some())];
            return refuse_given(&waits, "spaces reconnect attempts, and --no-retry makes none");
        }
        let token_anyway = [("--allow-unauthenticated", self.allow_unauthenticated && self.auth_token_file.is_some())];
        refuse_given(&token_anyway, "does nothing with --auth-token-file: clients must send that token")?;
        let tunnel = [
            ("--name", self.name.is_some()),
            ("--publish", self.publish),
            ("--no-publish", self.no_publish),
            ("--label", !self.label.is_empty()),
            ("--retry", self.retry),
            ("--no-retry", self.no_retry),
            ("--retry-interval", self.retry_interval.is_some()),
        ];
        refuse_given(
            &tunnel,
            "requires --rstream: a local server (--listen) has no tunnel to name, publish, label or reconnect",
        )
    }

    /// Labels this server advertises in tunnel inventory.
    pub fn labels(&self, server: &WebttyServer) -> std::collections::BTreeMap<String, String> {
        let features = ServerFeatures {
            fs: server.fs_mode(),
            user_labels: self.label.iter().filter_map(|l| parse_user_label(l).ok()).collect(),
            detach: self.allow_detach,
            execution_mode: server.sessions.execution.mode(),
        };
        server_labels(&features)
    }
}

/// Why `--tls-cert-file` cannot work in a build without rustls.
#[cfg(not(feature = "engine"))]
const NO_TLS_SERVER: &str =
    "--tls-cert-file: this build has no TLS server; build with feature engine or put a TLS proxy in front";

/// The TLS handshake of `--tls-cert-file`/`--tls-key-file`.
#[cfg(feature = "engine")]
fn tls_handshake(cert: &Path, key: &Path) -> Result<crate::webtty::tls_listen::TlsHandshake, CliError> {
    crate::webtty::tls_listen::TlsHandshake::from_pem_files(cert, key).map_err(CliError::new)
}

/// No TLS server in this build: an error, whatever the files hold (never plain text instead).
#[cfg(not(feature = "engine"))]
fn tls_handshake(_cert: &Path, _key: &Path) -> Result<PlainTcp, CliError> {
    Err(CliError::new(NO_TLS_SERVER))
}

/// Refuses to serve without a token on an address other hosts can reach, unless `open` (the explicit
/// `--i-understand-this-is-open`).
fn check_unauthenticated_listen(
    listen: &str,
    mut ips: impl Iterator<Item = IpAddr>,
    open: bool,
) -> Result<(), CliError> {
    match ips.find(|ip| !ip.to_canonical().is_loopback()) {
        Some(ip) if !open => Err(CliError::new(format!(
            "--allow-unauthenticated on --listen {listen:?} ({ip}) would give a shell to anyone who reaches that \
             address: listen on a loopback address (127.0.0.1, [::1], localhost), use a token \
             (--auth-token-file), or add --i-understand-this-is-open"
        ))),
        _ => Ok(()),
    }
}

/// Serves `listen` (each connection after `handshake`) until SIGTERM/SIGINT/SIGHUP, then ends running sessions
/// within `grace`. Without a token, the bound address must be loopback unless `open`, and requests must name the
/// listener ([`LocalHosts`]).
fn run_local<H: Handshake>(
    listen: &str,
    mut server: WebttyServer,
    handshake: H,
    grace: Duration,
    open: bool,
) -> CliResult {
    let (trigger, shutdown) = Shutdown::new();
    server.sessions.shutdown = shutdown.clone();
    let slots = server.sessions.slots.clone();
    let auth = if server.access.token.is_some() { "bearer token required" } else { "UNAUTHENTICATED" };
    let ex = smol::LocalExecutor::new();
    smol::block_on(ex.run(async {
        let listener = async_net::TcpListener::bind(listen)
            .await
            .map_err(|e| CliError::new(format!("listen on {listen:?}: {e}")))?;
        let addr = listener.local_addr().map_err(|e| CliError::new(format!("listen on {listen:?}: {e}")))?;
        if server.access.token.is_none() {
            check_unauthenticated_listen(listen, std::iter::once(addr.ip()), open)?;
            server.access.hosts = Some(LocalHosts { listen: addr.ip() });
        }
        let server = Arc::new(server);
        log_info!("webtty server listening on {}://{addr}/ ({auth})", H::WS_SCHEME);
        let signals = watch_signals(trigger)?;
        ex.spawn(signals).detach();
        serve_listener(listener, handshake, server, &ex, shutdown).await.map_err(|e| CliError::new(e.to_string()))?;
        drain_sessions(&slots, grace).await;
        Ok(0)
    }))
}

/// Makes this server the subreaper of what killed session supervisors leave behind (a warning, and no
/// adoption, where the system does not allow it).
fn adopt_orphans() -> Orphanage {
    Orphanage::adopt().unwrap_or_else(|e| {
        log_warn!("webtty server: cannot adopt orphaned session processes ({e}): a session process that leaves its session (setsid) and outlives its supervisor is not killed when the session ends");
        Orphanage::none()
    })
}

/// Waits (at most `grace`) for running sessions to end after a shutdown was triggered.
async fn drain_sessions(slots: &SessionSlots, grace: Duration) {
    log_info!("webtty server shutting down ({} sessions running)", slots.active());
    let deadline = Instant::now() + grace;
    while slots.active() > 0 && Instant::now() < deadline {
        async_io::Timer::after(Duration::from_millis(20)).await;
    }
}

/// The tunnel name when --name is not given: the host name, reduced to `[a-z0-9-]`.
fn default_name() -> Result<String, CliError> {
    let host = crate::webtty::sys::uname().map(|u| u.nodename).unwrap_or_default();
    let name: String = host
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .to_string();
    if name.is_empty() {
        return Err(CliError::new("--rstream needs --name (the host name is not usable as a tunnel name)"));
    }
    Ok(name)
}

/// Logs the agent's progress: registration as info, losses as warnings, streams at debug level.
fn log_events() -> EventSink {
    Arc::new(|event: &AgentEvent| match event {
        AgentEvent::Connecting { engine } => log_debug!("connecting to the engine {engine}"),
        AgentEvent::Connected { client_id, .. } => log_debug!("control channel open (client {client_id})"),
        AgentEvent::ConnectionFailed { error } => log_warn!("engine connection failed: {error}"),
        AgentEvent::Online { tunnel } => {
            let name = opt_str(&tunnel.name).unwrap_or("?");
            let id = opt_str(&tunnel.id).unwrap_or("?");
            let reach = match opt_str(&tunnel.host) {
                Some(host) if tunnel.is_published() => format!("published at https://{host} (token required)"),
                _ => "private".to_string(),
            };
            log_info!("webtty server online as rstrm://{name} (tunnel {id}, {reach})");
        }
        AgentEvent::TunnelFailed { name, error } => log_warn!("tunnel {name:?} refused: {error}"),
        AgentEvent::Disconnected { error } => log_warn!("engine connection lost: {error}"),
        other => log_debug!("{other:?}"),
    })
}

/// Fires `trigger` on SIGTERM, SIGINT or SIGHUP.
fn watch_signals(trigger: ShutdownTrigger) -> Result<impl std::future::Future<Output = ()>, CliError> {
    let mut pipe = SignalPipe::install(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP])
        .map_err(|e| CliError::new(format!("signal handlers: {e}")))?;
    let reader = pipe.reader().ok_or_else(|| CliError::new("signal pipe already taken"))?;
    let mut reader = async_io::Async::new(reader).map_err(|e| CliError::new(format!("signal pipe: {e}")))?;
    Ok(async move {
        let _keep_handlers = pipe;
        let mut byte = [0u8; 1];
        if reader.read(&mut byte).await.is_ok() {
            log_info!("webtty server: signal {} received", byte[0]);
        }
        trigger.trigger();
    })
}
