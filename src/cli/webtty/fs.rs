//! `rstream webtty fs`: files on a WebTTY server's WebDAV sidecar (`--fs-root` on the device).
//!
//! Paths are relative to the server's `--fs-root`: `/` is that directory, not the device's filesystem root.
//! The connection flags (`--url`, `--auth-token-file`, `--tls-*`, `--fs-path`, `-o`) go before or after the verb
//! ([`SharedFlags`]). The byte-moving verbs live in [`super::fs_transfer`]; this file holds the flags, the
//! dispatch and what is printed.

use std::path::{Path, PathBuf};

use argh::{ArgsInfo, FromArgs};
use serde_json::json;

use super::fs_transfer;
use super::tls_flags;
use crate::cli::output::Stdout;
use crate::cli::shared_flags::SharedFlags;
use crate::cli::{output_or, CliError, CliResult, OutputFormat};
use crate::operator::fs_session::{self, FsSession};
use crate::webdav::{normalize_path, DavEntry, EntryKind};

/// `rstream webtty fs`, its connection flags accepted before or after the verb.
pub type FsGroup = SharedFlags<FsCommand>;

/// files on a WebTTY server's WebDAV sidecar; paths are relative to the server's --fs-root
#[derive(FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "fs",
    example = "rstream webtty fs ls --url rstrm://pi /",
    example = "rstream webtty fs read --url rstrm://pi /etc-copy/hosts",
    example = "echo hello | rstream webtty fs write --url rstrm://pi /notes/hello.txt",
    example = "rstream webtty fs --url rstrm://pi download /logs/app.log - | tail",
    example = "rstream webtty fs ls --url http://127.0.0.1:8080 --auth-token-file token /",
    example = "rstream webtty fs ls --url https://pi.lan:8443 --tls-ca-file ca.pem --auth-token-file token /",
    note = "The options above go before or after the verb: `fs --url rstrm://pi ls /` = `fs ls --url rstrm://pi /`.",
    note = "The server must advertise the `fs` capability (`rstream webtty list`); exec-only servers are refused."
)]
pub struct FsCommand {
    /// server: rstrm://NAME (through the engine), or http(s)://HOST:PORT / ws(s)://HOST:PORT for a --listen server
    #[argh(option)]
    pub url: String,
    /// sidecar path (default: advertised by the server, else /fs)
    #[argh(option)]
    pub fs_path: Option<String>,
    /// file with the bearer token of a --listen server (or RSTREAM_WEBTTY_AUTH_TOKEN)
    #[argh(option)]
    pub auth_token_file: Option<String>,
    /// https:// only: PEM file of the CA that signed the server's --tls-cert-file (default: the context's CA)
    #[argh(option)]
    pub tls_ca_file: Option<PathBuf>,
    /// https:// only: DNS name to verify in the server certificate (default: the URL host; needed for IP URLs)
    #[argh(option)]
    pub tls_server_name: Option<String>,
    /// https:// only: do not verify the server certificate (insecure)
    #[argh(switch)]
    pub tls_insecure_skip_verify: bool,
    /// output: table (ls), text (stat), json, none; the changing verbs print nothing unless json; not for read
    /// or download to -, whose output is the file
    #[argh(option, short = 'o')]
    pub output: Option<String>,
    #[argh(subcommand)]
    pub command: FsSub,
}

/// Filesystem subcommands.
#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand)]
pub enum FsSub {
    Ls(LsCommand),
    Stat(StatCommand),
    Read(ReadCommand),
    Write(WriteCommand),
    Upload(UploadCommand),
    Download(DownloadCommand),
    Mkdir(MkdirCommand),
    Rm(RmCommand),
    Mv(MvCommand),
}

/// list a directory
#[derive(FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "ls",
    example = "rstream webtty fs ls --url rstrm://pi /logs",
    example = "rstream webtty fs ls --url rstrm://pi / -o json"
)]
pub struct LsCommand {
    /// directory (default /)
    #[argh(positional)]
    pub path: Option<String>,
}

/// show one file or directory
#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand, name = "stat", example = "rstream webtty fs stat --url rstrm://pi /logs/app.log -o json")]
pub struct StatCommand {
    /// path
    #[argh(positional)]
    pub path: String,
}

/// print a file to stdout (a directory is refused: list it with `fs ls`)
#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand, name = "read", example = "rstream webtty fs read --url rstrm://pi /README.md")]
pub struct ReadCommand {
    /// path
    #[argh(positional)]
    pub path: String,
}

/// write stdin to a file (replaced atomically on the server)
#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand, name = "write", example = "echo hello | rstream webtty fs write --url rstrm://pi /notes/hello.txt")]
pub struct WriteCommand {
    /// path
    #[argh(positional)]
    pub path: String,
}

/// upload a local file, FIFO or `-` (stdin); a remote path ending in / keeps the local name
#[derive(FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "upload",
    example = "rstream webtty fs upload --url rstrm://pi ./app.conf /etc-copy/",
    example = "tar c logs | rstream webtty fs upload --url rstrm://pi - /backup/logs.tar",
    note = "Regular files are sent with their size; pipes, FIFOs and `-` stream until they end."
)]
pub struct UploadCommand {
    /// local file, FIFO, or - for stdin
    #[argh(positional)]
    pub local: String,
    /// remote path
    #[argh(positional)]
    pub remote: String,
}

/// download a file to a local path (into it, if it is a directory), or `-` for stdout
#[derive(FromArgs, ArgsInfo)]
#[argh(
    subcommand,
    name = "download",
    example = "rstream webtty fs download --url rstrm://pi /logs/app.log ./app.log",
    example = "rstream webtty fs download --url rstrm://pi /logs/app.log - | tail",
    note = "The local file is replaced atomically (temp file in the same directory, then rename); a remote \
            directory is refused."
)]
pub struct DownloadCommand {
    /// remote path
    #[argh(positional)]
    pub remote: String,
    /// local path, or - for stdout
    #[argh(positional)]
    pub local: String,
}

/// create a directory (an existing one is fine)
#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand, name = "mkdir", example = "rstream webtty fs mkdir --url rstrm://pi /notes")]
pub struct MkdirCommand {
    /// path
    #[argh(positional)]
    pub path: String,
}

/// delete a file or a directory (recursively)
#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand, name = "rm", example = "rstream webtty fs rm --url rstrm://pi /notes/old.txt")]
pub struct RmCommand {
    /// path
    #[argh(positional)]
    pub path: String,
}

/// move or rename (refuses to replace an existing destination unless --force)
#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand, name = "mv", example = "rstream webtty fs mv --url rstrm://pi /notes/a.txt /notes/b.txt --force")]
pub struct MvCommand {
    /// source path
    #[argh(positional)]
    pub from: String,
    /// destination path
    #[argh(positional)]
    pub to: String,
    /// replace an existing destination
    #[argh(switch)]
    pub force: bool,
}

impl FsCommand {
    /// Runs the selected filesystem command.
    pub fn run(self) -> CliResult {
        let output = self.output_format()?;
        let (ca, name) = (&self.tls_ca_file, &self.tls_server_name);
        let tls = tls_flags::for_fs_url(&self.url, ca, name, self.tls_insecure_skip_verify)?;
        let token = super::auth_token(self.auth_token_file.as_deref().map(Path::new))?;
        smol::block_on(async {
            let session = fs_session::open(&self.url, self.fs_path.as_deref(), token.as_ref(), &tls).await?;
            run_verb(session, self.command, output).await
        })
    }

    /// The `-o` format for the verb: its default when absent; refused where stdout carries the file itself.
    fn output_format(&self) -> Result<OutputFormat, CliError> {
        let file_on_stdout = match &self.command {
            FsSub::Read(_) => Some("fs read"),
            FsSub::Download(c) if c.local == "-" => Some("fs download … -"),
            _ => None,
        };
        if let (Some(verb), Some(value)) = (file_on_stdout, &self.output) {
            return Err(CliError::new(format!(
                "-o {value} does not apply to `{verb}`: its output is the file's bytes (for facts about the file, \
                 use `rstream webtty fs stat -o json`)"
            )));
        }
        let default = match self.command {
            FsSub::Ls(_) => OutputFormat::Table,
            _ => OutputFormat::Text,
        };
        output_or(&self.output, default)
    }
}

async fn run_verb(mut s: FsSession, command: FsSub, output: OutputFormat) -> CliResult {
    let done = match command {
        FsSub::Ls(c) => {
            let entries = s.client.list(c.path.as_deref().unwrap_or("/")).await?;
            return print_entries(&entries, output).map(|()| 0);
        }
        FsSub::Stat(c) => {
            let entry = s.client.stat(&c.path).await?;
            return match output {
                OutputFormat::Json => print_json(&serde_json::to_value(&entry)?),
                OutputFormat::None => Ok(()),
                _ => print_entries(std::slice::from_ref(&entry), OutputFormat::Table),
            }
            .map(|()| 0);
        }
        FsSub::Read(c) => {
            fs_transfer::read_to_stdout(&mut s, &c.path).await?;
            return Ok(0);
        }
        FsSub::Download(c) if c.local == "-" => {
            fs_transfer::read_to_stdout(&mut s, &c.remote).await?;
            return Ok(0);
        }
        FsSub::Download(c) => {
            let (local, bytes) = fs_transfer::download(&mut s, &c.remote, Path::new(&c.local)).await?;
            json!({"ok": true, "path": local.display().to_string(), "bytes": bytes})
        }
        FsSub::Write(c) => {
            let bytes = fs_transfer::write_stdin(&mut s, &c.path).await?;
            json!({"ok": true, "path": normalize_path(&c.path), "bytes": bytes})
        }
        FsSub::Upload(c) => {
            let (remote, bytes) = fs_transfer::upload(&mut s, &c.local, &c.remote).await?;
            json!({"ok": true, "path": remote, "bytes": bytes})
        }
        FsSub::Mkdir(c) => {
            s.client.mkdir(&c.path).await?;
            json!({"ok": true, "path": normalize_path(&c.path)})
        }
        FsSub::Rm(c) => {
            s.client.delete(&c.path).await?;
            json!({"ok": true, "path": normalize_path(&c.path)})
        }
        FsSub::Mv(c) => {
            s.client.rename(&c.from, &c.to, c.force).await?;
            json!({"ok": true, "from": normalize_path(&c.from), "to": normalize_path(&c.to)})
        }
    };
    if output == OutputFormat::Json {
        print_json(&done)?;
    }
    Ok(0)
}

fn print_json(value: &serde_json::Value) -> Result<(), CliError> {
    writeln!(Stdout, "{}", serde_json::to_string_pretty(value)?)
}

/// Prints entries as upstream does: a `PATH KIND SIZE MODIFIED` table, or the JSON array.
fn print_entries(entries: &[DavEntry], output: OutputFormat) -> Result<(), CliError> {
    match output {
        OutputFormat::Json => return print_json(&serde_json::to_value(entries)?),
        OutputFormat::None => return Ok(()),
        OutputFormat::Table | OutputFormat::Text => {}
    }
    let w = entries.iter().map(|e| e.path.len()).max().unwrap_or(4).max(4);
    writeln!(Stdout, "{:<w$}  {:<9}  {:>12}  MODIFIED", "PATH", "KIND", "SIZE")?;
    for e in entries {
        let kind = match e.kind {
            EntryKind::Directory => "directory",
            EntryKind::File => "file",
        };
        let size = e.size.map_or_else(|| "-".to_owned(), |s| s.to_string());
        writeln!(Stdout, "{:<w$}  {kind:<9}  {size:>12}  {}", e.path, e.modified.as_deref().unwrap_or("-"))?;
    }
    Ok(())
}
