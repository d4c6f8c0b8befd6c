//! `rstream context create|list|use|show|delete`: manage contexts in the config file.
//!
//! Tokens are stored inline (upstream's `kind: inline`) in a 0600 file and never printed: `show` reports only
//! whether a token is present.

use std::path::{Path, PathBuf};

use argh::FromArgs;
use serde::Serialize;

use super::{output_or, to_json, CliError, CliResult, OutputFormat};
use crate::cli::output::Stdout;
use crate::config::{self, ConfigFile, ContextEntry};

/// manage contexts (engine address, token, CA) in ~/.rstream/config.yaml or $RSTREAM_CONFIG
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "context",
    example = "rstream context create lab --engine relay.example.com:443 --token-file token --default",
    example = "rstream context list",
    example = "rstream context use lab",
    example = "rstream --context lab webtty list",
    note = "A context is an engine address, its token and the CA that signs its certificate. The default one is \
            used unless --context NAME or RSTREAM_CONTEXT picks another; `rstream engine serve` writes one called \
            \"local\"."
)]
pub struct ContextCommand {
    #[argh(subcommand)]
    pub command: ContextSub,
}

/// Context subcommands.
#[derive(FromArgs)]
#[argh(subcommand)]
pub enum ContextSub {
    Create(CreateCommand),
    List(ListCommand),
    Use(UseCommand),
    Show(ShowCommand),
    Delete(DeleteCommand),
}

/// create (or replace) a context
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "create",
    example = "rstream context create lab --engine relay.example.com:443 --token-file /etc/rstream/token --engine-tls-ca-file ca.pem --default"
)]
pub struct CreateCommand {
    /// context name
    #[argh(positional)]
    pub name: String,
    /// engine address host:port
    #[argh(option)]
    pub engine: String,
    /// file holding the token (stored inline in the config)
    #[argh(option)]
    pub token_file: Option<String>,
    /// the CA certificate (PEM) that signs the engine's certificate
    #[argh(option)]
    pub engine_tls_ca_file: Option<String>,
    /// the TLS server name if it differs from the engine host
    #[argh(option)]
    pub engine_tls_server_name: Option<String>,
    /// make it the default context
    #[argh(switch)]
    pub default: bool,
}

/// list contexts
#[derive(FromArgs)]
#[argh(subcommand, name = "list", example = "rstream context list -o json")]
pub struct ListCommand {
    /// output: table or json
    #[argh(option, short = 'o')]
    pub output: Option<String>,
}

/// make a context the default
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "use",
    example = "rstream context use lab",
    note = "Only the default changes; one command can use another context with --context NAME."
)]
pub struct UseCommand {
    /// context name
    #[argh(positional)]
    pub name: String,
}

/// show the resolved context (the token is never printed)
#[derive(FromArgs)]
#[argh(subcommand, name = "show", example = "RSTREAM_CONTEXT=lab rstream context show -o json")]
pub struct ShowCommand {
    /// context name (default: the selected one)
    #[argh(positional)]
    pub name: Option<String>,
    /// output: text or json
    #[argh(option, short = 'o')]
    pub output: Option<String>,
}

/// delete a context
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "delete",
    example = "rstream context delete lab",
    note = "The context and its stored token are removed from the config file; the engine and its tokens are \
            untouched (revoke a token with `rstream engine token revoke JTI`)."
)]
pub struct DeleteCommand {
    /// context name
    #[argh(positional)]
    pub name: String,
}

/// One context as printed by `list` and `show` (no secrets).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContextView<'a> {
    name: Option<&'a str>,
    default: bool,
    engine: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_file: Option<String>,
    token: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    config_path: Option<String>,
}

impl ContextCommand {
    /// Runs the selected context command.
    pub fn run(self) -> CliResult {
        let path = config::config_path();
        match self.command {
            ContextSub::Create(c) => create(&path, c),
            ContextSub::List(c) => list(&path, output_or(&c.output, OutputFormat::Table)?),
            ContextSub::Use(c) => use_context(&path, &c.name),
            ContextSub::Show(c) => show(c.name, output_or(&c.output, OutputFormat::Text)?),
            ContextSub::Delete(c) => delete(&path, &c.name),
        }
    }
}

fn create(path: &Path, c: CreateCommand) -> CliResult {
    if c.name.trim().is_empty() {
        return Err(CliError::new("context name must not be empty"));
    }
    let token = match &c.token_file {
        Some(file) => {
            let t = std::fs::read_to_string(file).map_err(|e| CliError::new(format!("token file {file}: {e}")))?;
            let t = t.trim().to_owned();
            if t.is_empty() {
                return Err(CliError::new(format!("token file {file} is empty")));
            }
            Some(t)
        }
        None => None,
    };
    let ca = match &c.engine_tls_ca_file {
        Some(file) => {
            let abs = std::fs::canonicalize(file).map_err(|e| CliError::new(format!("CA file {file}: {e}")))?;
            Some(abs)
        }
        None => None,
    };
    let mut entry = ContextEntry::engine_only(&c.name, &c.engine, token.as_deref(), ca.as_deref());
    if let Some(sn) = c.engine_tls_server_name {
        entry.transport.get_or_insert_with(Default::default).tls.get_or_insert_with(Default::default).server_name =
            Some(sn);
    }
    let made_default = config::update(path, |cfg| {
        cfg.upsert_context(entry);
        let make_default = c.default || cfg.default_context_name().is_none();
        if make_default {
            cfg.set_default(&c.name);
        }
        make_default
    })?;
    let note = if made_default { " (default)" } else { "" };
    writeln!(Stdout, "context {:?} written to {}{note}", c.name, path.display())?;
    Ok(0)
}

fn view<'a>(cfg: &'a ConfigFile, entry: &'a ContextEntry) -> ContextView<'a> {
    ContextView {
        name: Some(&entry.name),
        default: cfg.default_context_name() == Some(entry.name.as_str()),
        engine: entry.engine.as_deref().unwrap_or(""),
        api_url: entry.api_url.as_deref(),
        ca_file: entry.tls().and_then(|t| t.ca_file.clone()),
        token: entry.inline_token().ok().flatten().is_some(),
        config_path: None,
    }
}

fn list(path: &Path, output: OutputFormat) -> CliResult {
    let cfg = ConfigFile::load(path)?;
    let views: Vec<_> = cfg.contexts.iter().map(|e| view(&cfg, e)).collect();
    match output {
        OutputFormat::Json => writeln!(Stdout, "{}", to_json(&views)?)?,
        OutputFormat::None => {}
        _ => {
            let width = views.iter().map(|v| v.name.unwrap_or("").len()).max().unwrap_or(4).max(4);
            writeln!(Stdout, "{:<width$}  {:<7}  {:<32}  CA FILE", "NAME", "DEFAULT", "ENGINE")?;
            for v in &views {
                let default = if v.default { "*" } else { "" };
                let ca = v.ca_file.as_deref().unwrap_or("-");
                writeln!(Stdout, "{:<width$}  {default:<7}  {:<32}  {ca}", v.name.unwrap_or(""), v.engine)?;
            }
        }
    }
    Ok(0)
}

fn use_context(path: &Path, name: &str) -> CliResult {
    let found = config::update(path, |cfg| {
        let found = cfg.context(name).is_some();
        if found {
            cfg.set_default(name);
        }
        found
    })?;
    if !found {
        return Err(CliError::new(format!("context {name:?} not found in {}", path.display())));
    }
    writeln!(Stdout, "default context is now {name:?}")?;
    Ok(0)
}

fn show(name: Option<String>, output: OutputFormat) -> CliResult {
    if let Some(name) = &name {
        std::env::set_var("RSTREAM_CONTEXT", name);
    }
    let r = config::resolve()?;
    let default = ConfigFile::load(&r.config_path)?.default_context_name().map(str::to_owned);
    let v = ContextView {
        name: r.name.as_deref(),
        default: r.name.is_some() && r.name == default,
        engine: &r.engine,
        api_url: r.api_url.as_deref(),
        ca_file: r.ca_file.as_ref().map(|p: &PathBuf| p.display().to_string()),
        token: r.token.is_some(),
        config_path: Some(r.config_path.display().to_string()),
    };
    match output {
        OutputFormat::Json => writeln!(Stdout, "{}", to_json(&v)?)?,
        OutputFormat::None => {}
        _ => {
            writeln!(Stdout, "context  : {}", v.name.unwrap_or("(environment)"))?;
            writeln!(Stdout, "engine   : {}", v.engine)?;
            writeln!(Stdout, "ca file  : {}", v.ca_file.as_deref().unwrap_or("-"))?;
            writeln!(Stdout, "token    : {}", if v.token { "present" } else { "missing" })?;
            writeln!(Stdout, "config   : {}", v.config_path.as_deref().unwrap_or("-"))?;
        }
    }
    Ok(0)
}

fn delete(path: &Path, name: &str) -> CliResult {
    if !config::update(path, |cfg| cfg.remove_context(name))? {
        return Err(CliError::new(format!("context {name:?} not found in {}", path.display())));
    }
    writeln!(Stdout, "context {name:?} deleted")?;
    Ok(0)
}
