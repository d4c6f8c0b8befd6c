//! `rstream engine serve|token|token revoke`: run the self-hosted relay, mint least-privilege tokens (each with
//! its own subject and `jti`), revoke them.

use std::path::{Path, PathBuf};

use argh::FromArgs;

use super::output::Stdout;
use super::{output_or, CliError, CliResult, OutputFormat};
use crate::engine::auth::{
    parse_permissions, parse_ttl, Authorizer, RESOURCES_READ_ONLY, STANDARD_PERMISSIONS, STREAMS_CREATE_DELETE,
    TUNNELS_CREATE_DELETE,
};
use crate::engine::ids::random_hex;
use crate::engine::revocation::revoke;
use crate::engine::server::{BoundEngine, ServeConfig};
use crate::engine::state::{read_secret_file, StateDir, DEVICE_VISIBLE_DNS_NAMES};
use crate::limits::NAME_GRACE_DEFAULT;
use crate::proto::rstream::{ALPN_HTTP1, ALPN_RSTRM};
use crate::transport::tls_server::server_config;

/// Default TLS listen address of `engine serve`.
const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
/// Longest `engine token --sub`.
const MAX_SUBJECT_LEN: usize = 128;
/// Name of the context `engine serve` writes.
#[cfg(feature = "client")]
const CONTEXT_NAME: &str = "local";

/// run or administer the self-hosted engine (relay)
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "engine",
    example = "rstream engine serve",
    example = "rstream engine token --permissions tunnels.tunnels.create-delete --ttl 365d --sub pi-kitchen",
    example = "rstream engine token revoke 5f0c3e9a6d2b4c71a8e9f0b1c2d3e4f5"
)]
pub struct EngineCommand {
    #[argh(subcommand)]
    pub command: EngineSub,
}

/// Engine subcommands.
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
    example = "rstream engine serve --http-listen 0.0.0.0:80 --name-grace 2m",
    note = "Published HTTP tunnels answer at https://<name>.t.<host>:<port>; the REST API at \
            https://<host>:<port>/api. \
            A tunnel name belongs to the token subject that registered it: other subjects get 409 while it is \
            online and for --name-grace after its control channel drops; the owners are kept in <state>/tunnel-names, \
            so after a restart every owned name is reserved for its owner for --name-grace. Names and ids are case-insensitive; a \
            name of 16 hex digits (the shape of an id) is refused. token_auth tunnels are not served in clear \
            text: the plain listener redirects them to https. The local operator token (context \"local\", \
            <state>/operator-token) is minted once and carries tunnels.tunnels.admin."
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
    /// how long a tunnel name stays reserved for its owner after its control channel drops or the engine
    /// restarts, e.g. 45s, 2m (default 45s: three heartbeat deadlines)
    #[argh(option)]
    pub name_grace: Option<String>,
}

/// mint a token signed by the engine's secret (printed on stdout; its jti on stderr), or revoke one
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "token",
    example = "rstream engine token --permissions tunnels.tunnels.create-delete --ttl 365d --sub pi-kitchen",
    example = "rstream engine token --permissions tunnels.resources.read-only,tunnels.streams.create-delete --ttl 30d",
    example = "rstream engine token --permissions tunnels.resources.read-only,tunnels.tunnels.admin -o json",
    example = "rstream engine token revoke 5f0c3e9a6d2b4c71a8e9f0b1c2d3e4f5",
    note = "Permissions: tunnels.tunnels.create-delete (agents register tunnels; a name belongs to the token's \
            subject), tunnels.resources.read-only (list tunnels and clients), tunnels.streams.create-delete (dial \
            tunnels, pass token_auth), tunnels.tunnels.admin (delete any subject's tunnel; never granted by \
            default). Each token gets its own subject unless --sub is given: give one device's tokens the same \
            --sub so they share its names. Each token carries a jti for `engine token revoke`."
)]
pub struct TokenCommand {
    #[argh(subcommand)]
    pub revoke: Option<TokenSub>,
    /// comma-separated permission names (default: tunnels.tunnels.create-delete, tunnels.resources.read-only,
    /// tunnels.streams.create-delete)
    #[argh(option)]
    pub permissions: Option<String>,
    /// lifetime, e.g. 3600s, 12h, 30d (default: no expiry; a device token without one draws a warning)
    #[argh(option)]
    pub ttl: Option<String>,
    /// subject the token is minted for (owns the tunnel names it registers; shown as user_id; default: a fresh
    /// "device-…" or "operator-…" per token)
    #[argh(option)]
    pub sub: Option<String>,
    /// output: text (the token) or json ({"token", "jti", "sub", "permissions", "iat", "exp"})
    #[argh(option, short = 'o')]
    pub output: Option<String>,
    /// state directory holding the secret
    #[argh(option)]
    pub state_dir: Option<String>,
    /// file holding the HS256 secret
    #[argh(option)]
    pub jwt_secret_file: Option<String>,
}

/// `engine token` subcommands.
#[derive(FromArgs)]
#[argh(subcommand)]
pub enum TokenSub {
    Revoke(RevokeCommand),
}

/// refuse a token from now on, by its jti (a running engine picks it up at once)
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "revoke",
    example = "rstream engine token revoke 5f0c3e9a6d2b4c71a8e9f0b1c2d3e4f5 --state-dir /var/lib/rstream/engine",
    note = "Writes <state>/revoked-tokens (0600). The engine refuses the token on the REST API, control channels \
            (closing an open one at its next heartbeat) and streams; streams already spliced run to their end."
)]
pub struct RevokeCommand {
    /// the token's jti (printed by `engine token`, or its `jti` claim)
    #[argh(positional)]
    pub jti: String,
    /// state directory of the engine
    #[argh(option)]
    pub state_dir: Option<String>,
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
    let name_grace = match &cmd.name_grace {
        Some(text) => parse_ttl(text).map_err(|e| CliError::new(format!("--name-grace: {e}")))?,
        None => NAME_GRACE_DEFAULT,
    };
    let tls = server_config(&chain, &key, &[ALPN_RSTRM, ALPN_HTTP1])?;
    let listen = cmd.listen.clone().unwrap_or_else(|| DEFAULT_LISTEN.into());
    let config = ServeConfig {
        listen,
        http_listen: cmd.http_listen.clone(),
        hosts: cmd.host.clone(),
        tls,
        secret,
        name_grace,
        revocation_list: Some(state.revocations()),
        name_store: Some(state.tunnel_names()),
    };
    let bound = BoundEngine::bind(config)?;
    let addr = bound.tls_addr()?;
    let hosts = bound.engine().hosts.clone();
    let engine_addr = format!("{}:{}", hosts.hosts()[0], addr.port());

    // The context is written before anything is printed: once the listen line appears, everything is ready.
    let context_line = if cmd.no_context {
        "context: not written (--no-context); mint a token with `rstream engine token`".to_owned()
    } else {
        let token = state.ensure_operator_token(&bound.engine().auth)?;
        write_context(&engine_addr, &token, ca_file.as_deref()).unwrap_or_else(|e| format!("context: not written: {e}"))
    };
    writeln!(Stdout, "rstream engine serving")?;
    if let Some(http) = bound.http_addr() {
        writeln!(Stdout, "  http:    {http} (plain HTTP, published tunnels only)")?;
    }
    writeln!(Stdout, "  tunnels: {}", hosts.tunnel_authority("<name>").replace("<name>", "https://<name>"))?;
    writeln!(Stdout, "  api:     https://{engine_addr}/api/tunnels")?;
    writeln!(Stdout, "  state:   {}", state.dir.display())?;
    if let Some(ca) = &ca_file {
        writeln!(Stdout, "  ca:      {}", ca.display())?;
    }
    writeln!(Stdout, "  {context_line}")?;
    writeln!(Stdout, "  listen:  {addr} (TLS 1.3; ALPN rstrm/1, http/1.1)")?;
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
    if let Some(TokenSub::Revoke(mut revoke_cmd)) = cmd.revoke {
        let minting = cmd.permissions.is_some() || cmd.ttl.is_some() || cmd.sub.is_some() || cmd.output.is_some();
        if minting || cmd.jwt_secret_file.is_some() {
            return Err(CliError::new("`engine token revoke` takes a jti and --state-dir only"));
        }
        revoke_cmd.state_dir = revoke_cmd.state_dir.or(cmd.state_dir);
        return revoke_token(revoke_cmd);
    }
    let output = match output_or(&cmd.output, OutputFormat::Text)? {
        format @ (OutputFormat::Text | OutputFormat::Json) => format,
        _ => {
            let given = cmd.output.as_deref().unwrap_or_default();
            return Err(CliError::new(format!("engine token -o {given:?}: use text or json")));
        }
    };
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
        None => STANDARD_PERMISSIONS.to_vec(),
    };
    let ttl = cmd.ttl.as_deref().map(parse_ttl).transpose().map_err(CliError::new)?;
    let sub = match &cmd.sub {
        Some(sub) if sub.trim().is_empty() || sub.len() > MAX_SUBJECT_LEN || sub.chars().any(char::is_control) => {
            return Err(CliError::new(format!("--sub {sub:?}: use 1-{MAX_SUBJECT_LEN} printable characters")));
        }
        Some(sub) => sub.clone(),
        None => fresh_subject(&permissions),
    };
    if ttl.is_none() && permissions.contains(&TUNNELS_CREATE_DELETE) {
        log_warn!(
            "this token may register tunnels and never expires: give devices a lifetime (--ttl 365d) and revoke a \
             lost one with `rstream engine token revoke JTI`"
        );
    }
    let (token, claims) = Authorizer::new(secret).issue(&sub, &permissions, ttl);
    let jti = claims.jti.clone().unwrap_or_default();
    match output {
        OutputFormat::Json => {
            let json = serde_json::json!({
                "token": token, "jti": jti, "sub": claims.sub, "permissions": claims.permissions,
                "iat": claims.iat, "exp": claims.exp,
            });
            writeln!(Stdout, "{json}")?;
        }
        _ => {
            writeln!(Stdout, "{token}")?;
            eprintln!("jti: {jti} (subject {sub:?}; revoke with `rstream engine token revoke {jti}`)");
        }
    }
    Ok(0)
}

/// A subject no other minted token has: `device-<hex>` for a token that can only register tunnels, else
/// `operator-<hex>`. Two devices given two tokens are two subjects, so neither can take the other's names.
fn fresh_subject(permissions: &[&str]) -> String {
    let operator = permissions.iter().any(|p| [RESOURCES_READ_ONLY, STREAMS_CREATE_DELETE].contains(p));
    let role = if operator || !permissions.contains(&TUNNELS_CREATE_DELETE) { "operator" } else { "device" };
    format!("{role}-{}", random_hex::<6>())
}

fn revoke_token(cmd: RevokeCommand) -> CliResult {
    let state = StateDir::resolve(cmd.state_dir.as_deref())?;
    if !state.secret().exists() {
        return Err(CliError::new(format!(
            "no engine state in {}: pass the engine's --state-dir",
            state.dir.display()
        )));
    }
    let path = state.revocations();
    if revoke(&path, &cmd.jti)? {
        eprintln!("revoked token {}: listed in {}", cmd.jti, path.display());
    } else {
        eprintln!("token {} was already revoked ({})", cmd.jti, path.display());
    }
    Ok(0)
}
