//! `rstream engine serve|token`: run the self-hosted relay, mint least-privilege tokens.

use std::path::{Path, PathBuf};

use argh::FromArgs;

use super::{CliError, CliResult};
use crate::engine::auth::{parse_permissions, parse_ttl, Authorizer, ALL_PERMISSIONS};
use crate::engine::server::{BoundEngine, ServeConfig};
use crate::engine::state::{read_secret_file, StateDir, DEVICE_VISIBLE_DNS_NAMES};
use crate::proto::rstream::{ALPN_HTTP1, ALPN_RSTRM};
use crate::transport::tls_server::server_config;

/// Default TLS listen address of `engine serve`.
const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
/// Name of the context `engine serve` writes.
#[cfg(feature = "client")]
const CONTEXT_NAME: &str = "local";

/// run or administer the self-hosted engine (relay)
#[derive(FromArgs)]
#[argh(subcommand, name = "engine")]
pub struct EngineCommand {
    #[argh(subcommand)]
    pub command: EngineSub,
}

#[derive(FromArgs)]
#[argh(subcommand)]
pub enum EngineSub {
    Serve(ServeCommand),
    Token(TokenCommand),
}

/// serve the engine; with no flags: a local engine on 127.0.0.1:8443 with a generated CA, certificate, secret
/// and an operator context written to the config
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "serve",
    example = "rstream engine serve",
    example = "rstream engine serve --listen 0.0.0.0:443 --host relay.example.com --cert c.pem --key k.pem",
    example = "rstream engine serve --listen 127.0.0.1:0 --state-dir /tmp/engine --no-context",
    note = "Published HTTP tunnels answer at https://<name>.t.<host>:<port>; the REST API at https://<host>:<port>/api."
)]
pub struct ServeCommand {
    /// the TLS listen address (default 127.0.0.1:8443; port 0 picks a free port)
    #[argh(option)]
    pub listen: Option<String>,
    /// plain-HTTP listener for published tunnels
    #[argh(option)]
    pub http_listen: Option<String>,
    /// public host name of the engine (repeatable; tunnels are <name>.t.<host>); default localhost
    #[argh(option)]
    pub host: Vec<String>,
    /// state directory (default $XDG_STATE_HOME/rstream/engine)
    #[argh(option)]
    pub state_dir: Option<String>,
    /// a PEM certificate chain (instead of the generated one; ECDSA P-256 for embedded devices)
    #[argh(option)]
    pub cert: Option<String>,
    /// the PEM private key for --cert
    #[argh(option)]
    pub key: Option<String>,
    /// file holding the HS256 secret (instead of the generated one)
    #[argh(option)]
    pub jwt_secret_file: Option<String>,
    /// do not write an operator context into the config file
    #[argh(switch)]
    pub no_context: bool,
}

/// mint a token signed by the engine's secret
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "token",
    example = "rstream engine token --permissions tunnels.tunnels.create-delete --ttl 30d   # a device",
    example = "rstream engine token --permissions tunnels.resources.read-only,tunnels.streams.create-delete",
    note = "Permissions: tunnels.tunnels.create-delete (agents register tunnels), tunnels.resources.read-only \
            (list tunnels and clients), tunnels.streams.create-delete (dial tunnels)."
)]
pub struct TokenCommand {
    /// comma-separated permission names (default: all)
    #[argh(option)]
    pub permissions: Option<String>,
    /// lifetime, e.g. 3600s, 12h, 30d (default: no expiry)
    #[argh(option)]
    pub ttl: Option<String>,
    /// subject the token is minted for (shown as user_id; default "operator")
    #[argh(option)]
    pub sub: Option<String>,
    /// state directory holding the secret
    #[argh(option)]
    pub state_dir: Option<String>,
    /// file holding the HS256 secret
    #[argh(option)]
    pub jwt_secret_file: Option<String>,
}

impl EngineCommand {
    /// Runs the selected engine command.
    pub fn run(self) -> CliResult {
        match self.command {
            EngineSub::Serve(c) => serve(c),
            EngineSub::Token(c) => token(c),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| CliError::new(format!("cannot read {}: {e}", path.display())))
}

fn serve(cmd: ServeCommand) -> CliResult {
    let state = StateDir::resolve(cmd.state_dir.as_deref())?;
    state.create()?;
    let dialed_names = cmd.host.iter().filter(|h| h.parse::<std::net::IpAddr>().is_err()).count();
    if dialed_names >= DEVICE_VISIBLE_DNS_NAMES && cmd.cert.is_none() {
        log_warn!("embedded devices verify only the first {DEVICE_VISIBLE_DNS_NAMES} names of the certificate; later --host names (and localhost) will not verify on them");
    }
    let (chain, key, ca_file) = match (&cmd.cert, &cmd.key) {
        (Some(cert), Some(key)) => (read(Path::new(cert))?, read(Path::new(key))?, None),
        (None, None) => {
            if state.ensure_certificates(&cmd.host)? {
                log_info!("issued a new certificate in {}", state.dir.display());
            }
            (read(&state.cert())?, read(&state.key())?, Some(state.ca_cert()))
        }
        _ => return Err(CliError::new("--cert and --key must be given together")),
    };
    let secret = match &cmd.jwt_secret_file {
        Some(path) => read_secret_file(Path::new(path))?,
        None => state.ensure_secret()?,
    };
    let tls = server_config(&chain, &key, &[ALPN_RSTRM, ALPN_HTTP1])?;
    let listen = cmd.listen.clone().unwrap_or_else(|| DEFAULT_LISTEN.into());
    let config = ServeConfig { listen, http_listen: cmd.http_listen.clone(), hosts: cmd.host.clone(), tls, secret };
    let bound = BoundEngine::bind(config)?;
    let addr = bound.tls_addr()?;
    let hosts = bound.engine().hosts.clone();
    let engine_addr = format!("{}:{}", hosts.hosts()[0], addr.port());

    // The context is written before anything is printed: once the listen line appears, everything is ready.
    let context_line = if cmd.no_context {
        "context: not written (--no-context); mint a token with `rstream engine token`".to_owned()
    } else {
        let token = bound.engine().auth.mint("operator", &ALL_PERMISSIONS, None);
        write_context(&engine_addr, &token, ca_file.as_deref()).unwrap_or_else(|e| format!("context: not written: {e}"))
    };
    println!("rstream engine serving");
    if let Some(http) = bound.http_addr() {
        println!("  http:    {http} (plain HTTP, published tunnels only)");
    }
    println!("  tunnels: {}", hosts.tunnel_authority("<name>").replace("<name>", "https://<name>"));
    println!("  api:     https://{engine_addr}/api/tunnels");
    println!("  state:   {}", state.dir.display());
    if let Some(ca) = &ca_file {
        println!("  ca:      {}", ca.display());
    }
    println!("  {context_line}");
    println!("  listen:  {addr} (TLS 1.3; ALPN rstrm/1, http/1.1)");
    bound.run()
}

/// Writes the `local` context (engine address, inline operator token, CA) and makes it the default if none is
/// set. Returns the line to print.
#[cfg(feature = "client")]
fn write_context(engine_addr: &str, token: &str, ca_file: Option<&Path>) -> Result<String, CliError> {
    use crate::config::{config_path, update, ContextEntry};
    let path = config_path();
    let ca_file = ca_file.map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned()));
    let entry = ContextEntry::engine_only(CONTEXT_NAME, engine_addr, Some(token), ca_file.as_deref());
    let is_default = update(&path, |cfg| {
        cfg.upsert_context(entry);
        if cfg.default_context_name().is_none() {
            cfg.set_default(CONTEXT_NAME);
        }
        cfg.default_context_name() == Some(CONTEXT_NAME)
    })?;
    let default = if is_default { ", default" } else { "; select it with --context local" };
    Ok(format!("config:  {} (context {CONTEXT_NAME:?}{default})", path.display()))
}

#[cfg(not(feature = "client"))]
fn write_context(_engine_addr: &str, _token: &str, _ca_file: Option<&Path>) -> Result<String, CliError> {
    Err(CliError::new("this build has no config support (feature `client`); use `rstream engine token`"))
}

fn token(cmd: TokenCommand) -> CliResult {
    let secret = match (&cmd.jwt_secret_file, &cmd.state_dir) {
        (Some(_), Some(_)) => return Err(CliError::new("give either --jwt-secret-file or --state-dir, not both")),
        (Some(file), None) => read_secret_file(Path::new(file))?,
        (None, dir) => {
            let state = StateDir::resolve(dir.as_deref())?;
            let path: PathBuf = state.secret();
            if !path.exists() {
                return Err(CliError::new(format!(
                    "no engine secret at {}: start `rstream engine serve` once, or pass --jwt-secret-file",
                    path.display()
                )));
            }
            read_secret_file(&path)?
        }
    };
    let permissions = match &cmd.permissions {
        Some(list) => parse_permissions(list).map_err(CliError::new)?,
        None => ALL_PERMISSIONS.to_vec(),
    };
    let ttl = cmd.ttl.as_deref().map(parse_ttl).transpose().map_err(CliError::new)?;
    let sub = cmd.sub.as_deref().unwrap_or("operator");
    println!("{}", Authorizer::new(secret).mint(sub, &permissions, ttl));
    Ok(0)
}
