//! `rstream webtty fs`: files on a WebTTY server's WebDAV sidecar (`--fs-root` on the device).
//!
//! Paths are relative to the server's `--fs-root`: `/` is that directory, not the device's filesystem root.
//! Downloads to a local file are atomic (temp file + rename); transfers over 1 MiB show a meter on a terminal.

use std::path::{Path, PathBuf};

use argh::FromArgs;
use futures_lite::AsyncWriteExt;

use crate::cli::output::Stdout;
use crate::cli::progress::{MeteredReader, MeteredWriter, Progress};
use crate::cli::{output_or, CliError, CliResult, OutputFormat};
use crate::operator::fs_session::{self, FsSession};
use crate::webdav::{DavEntry, EntryKind};
use crate::webtty::client::DirectTls;

/// files on a WebTTY server's WebDAV sidecar; paths are relative to the server's --fs-root
#[derive(FromArgs)]
#[argh(
    subcommand,
    name = "fs",
    example = "rstream webtty fs --url rstrm://pi ls /",
    example = "rstream webtty fs --url rstrm://pi read /etc-copy/hosts",
    example = "echo hello | rstream webtty fs --url rstrm://pi write /notes/hello.txt",
    example = "rstream webtty fs --url rstrm://pi download /logs/app.log - | tail",
    example = "rstream webtty fs --url http://127.0.0.1:8080 --auth-token-file token ls /",
    example = "rstream webtty fs --url https://pi.lan:8443 --tls-ca-file ca.pem --auth-token-file token ls /",
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
    #[argh(subcommand)]
    pub command: FsSub,
}

/// Filesystem subcommands.
#[derive(FromArgs)]
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
#[derive(FromArgs)]
#[argh(subcommand, name = "ls")]
pub struct LsCommand {
    /// directory (default /)
    #[argh(positional)]
    pub path: Option<String>,
    /// output: table or json
    #[argh(option, short = 'o')]
    pub output: Option<String>,
}

/// show one file or directory
#[derive(FromArgs)]
#[argh(subcommand, name = "stat")]
pub struct StatCommand {
    /// path
    #[argh(positional)]
    pub path: String,
    /// output: text or json
    #[argh(option, short = 'o')]
    pub output: Option<String>,
}

/// print a file to stdout
#[derive(FromArgs)]
#[argh(subcommand, name = "read")]
pub struct ReadCommand {
    /// path
    #[argh(positional)]
    pub path: String,
}

/// write stdin to a file (replaced atomically on the server)
#[derive(FromArgs)]
#[argh(subcommand, name = "write")]
pub struct WriteCommand {
    /// path
    #[argh(positional)]
    pub path: String,
}

/// upload a local file
#[derive(FromArgs)]
#[argh(subcommand, name = "upload")]
pub struct UploadCommand {
    /// local file
    #[argh(positional)]
    pub local: String,
    /// remote path
    #[argh(positional)]
    pub remote: String,
}

/// download a file to a local path, or `-` for stdout
#[derive(FromArgs)]
#[argh(subcommand, name = "download")]
pub struct DownloadCommand {
    /// remote path
    #[argh(positional)]
    pub remote: String,
    /// local path or -
    #[argh(positional)]
    pub local: String,
}

/// create a directory (an existing one is fine)
#[derive(FromArgs)]
#[argh(subcommand, name = "mkdir")]
pub struct MkdirCommand {
    /// path
    #[argh(positional)]
    pub path: String,
}

/// delete a file or a directory (recursively)
#[derive(FromArgs)]
#[argh(subcommand, name = "rm")]
pub struct RmCommand {
    /// path
    #[argh(positional)]
    pub path: String,
}

/// move or rename (refuses to replace an existing destination unless --force)
#[derive(FromArgs)]
#[argh(subcommand, name = "mv")]
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
        let token = super::auth_token(self.auth_token_file.as_deref().map(Path::new))?;
        let tls = DirectTls {
            ca_file: self.tls_ca_file.clone(),
            server_name: self.tls_server_name.clone(),
            insecure_skip_verify: self.tls_insecure_skip_verify,
        };
        smol::block_on(async {
            let session = fs_session::open(&self.url, self.fs_path.as_deref(), token.as_deref(), &tls).await?;
            run_sub(session, self.command).await
        })
    }
}

async fn run_sub(mut s: FsSession, command: FsSub) -> CliResult {
    let dav = &mut s.client;
    match command {
        FsSub::Ls(c) => {
            let entries = dav.list(c.path.as_deref().unwrap_or("/")).await?;
            match output_or(&c.output, OutputFormat::Table)? {
                OutputFormat::Json => writeln!(Stdout, "{}", serde_json::to_string_pretty(&entries)?)?,
                OutputFormat::None => {}
                _ => print_entries(&entries)?,
            }
        }
        FsSub::Stat(c) => {
            let entry = dav.stat(&c.path).await?;
            match output_or(&c.output, OutputFormat::Text)? {
                OutputFormat::Json => writeln!(Stdout, "{}", serde_json::to_string_pretty(&entry)?)?,
                OutputFormat::None => {}
                _ => print_entries(std::slice::from_ref(&entry))?,
            }
        }
        FsSub::Read(c) => {
            let mut out = smol::Unblock::new(std::io::stdout());
            dav.read(&c.path, &mut out).await?;
            out.flush().await?;
        }
        FsSub::Write(c) => {
            let mut progress = Progress::new(format!("write {}", c.path), None);
            let stdin = MeteredReader::new(smol::Unblock::new(std::io::stdin()), &mut progress);
            dav.write(&c.path, stdin, None).await?;
            progress.finish();
        }
        FsSub::Upload(c) => {
            let file = smol::fs::File::open(&c.local).await.map_err(|e| CliError::new(format!("{}: {e}", c.local)))?;
            let len = file.metadata().await?.len();
            let mut progress = Progress::new(format!("upload {}", c.local), Some(len));
            dav.write(&c.remote, MeteredReader::new(file, &mut progress), Some(len)).await?;
            progress.finish();
        }
        FsSub::Download(c) if c.local == "-" => {
            let mut out = smol::Unblock::new(std::io::stdout());
            dav.read(&c.remote, &mut out).await?;
            out.flush().await?;
        }
        FsSub::Download(c) => {
            let size = dav.stat(&c.remote).await.ok().and_then(|e| e.size);
            if !s.client.is_reusable() {
                s = s.reopen().await?;
            }
            download_to_file(&mut s, &c.remote, Path::new(&c.local), size).await?;
        }
        FsSub::Mkdir(c) => dav.mkdir(&c.path).await?,
        FsSub::Rm(c) => dav.delete(&c.path).await?,
        FsSub::Mv(c) => dav.rename(&c.from, &c.to, c.force).await?,
    }
    Ok(0)
}

/// Streams `remote` into a temp file next to `local`, then renames it into place.
async fn download_to_file(s: &mut FsSession, remote: &str, local: &Path, size: Option<u64>) -> Result<(), CliError> {
    let dir = local.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = local.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "download".into());
    let tmp = dir.join(format!(".{name}.rstream-download-{}.tmp", std::process::id()));
    let result = async {
        let file = smol::fs::File::create(&tmp).await?;
        let mut progress = Progress::new(format!("download {remote}"), size);
        let mut out = MeteredWriter::new(file, &mut progress);
        s.client.read(remote, &mut out).await?;
        out.close().await?;
        drop(out);
        progress.finish();
        smol::fs::rename(&tmp, local).await?;
        Ok::<(), CliError>(())
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| CliError::new(format!("download {remote} to {}: {e}", local.display())))
}

fn print_entries(entries: &[DavEntry]) -> Result<(), CliError> {
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
