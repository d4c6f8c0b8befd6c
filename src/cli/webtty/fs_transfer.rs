//! The byte-moving `webtty fs` verbs: `read` and `download -` to stdout, `download` to a local file, `upload`
//! and `write` from a local source.
//!
//! - Only a file is read or downloaded: the path is checked first (PROPFIND), since a directory's GET is a name
//!   listing, not its bytes.
//! - A download lands through [`AtomicFile`]: a temp file with an unguessable name, created new and no-follow in
//!   the destination's directory, fsynced and renamed into place — a symlink planted there is never written
//!   through, and a failed transfer leaves the old file and no temp file.
//! - An upload from a regular file declares its size; anything else (a pipe, a FIFO, `<(…)`, `/dev/stdin`,
//!   `-`) has no size to declare and streams chunked until it ends — the sidecar caps chunked bodies at its
//!   `--fs-max-upload-size` like sized ones.
//!
//! Transfers over 1 MiB show a meter on a terminal ([`Progress`]).

use std::path::{Path, PathBuf};

use futures_lite::io::AssertAsync;
use futures_lite::{AsyncRead, AsyncWriteExt};

use crate::atomic_file::AtomicFile;
use crate::cli::progress::{MeteredReader, MeteredWriter, Progress};
use crate::cli::CliError;
use crate::operator::fs_session::FsSession;
use crate::webdav::{normalize_path, DavClientError, DavEntry};

/// Mode of a downloaded file before the umask (as `cp` and `curl -o` create files).
const DOWNLOAD_MODE: u32 = 0o666;

/// The error for `op` on `path`, with a hint for a directory.
fn failed(op: &str, path: &str, e: DavClientError) -> CliError {
    match e {
        DavClientError::IsDirectory(dir) => {
            CliError::new(format!("{op} {dir}: {dir} is a directory (list it with `rstream webtty fs ls {dir}`)"))
        }
        e => CliError::new(format!("{op} {}: {e}", normalize_path(path))),
    }
}

/// Stats `remote`, refusing a directory, and leaves the session ready for the GET that follows.
async fn stat_file(s: &mut FsSession, op: &str, remote: &str) -> Result<DavEntry, CliError> {
    let entry = s.client.stat_file(remote).await.map_err(|e| failed(op, remote, e))?;
    if !s.client.is_reusable() {
        *s = s.reopen().await?;
    }
    Ok(entry)
}

/// Prints the file at `remote` on stdout (`fs read`, `fs download REMOTE -`).
pub async fn read_to_stdout(s: &mut FsSession, remote: &str) -> Result<u64, CliError> {
    stat_file(s, "read", remote).await?;
    let mut out = smol::Unblock::new(std::io::stdout());
    let n = s.client.read(remote, &mut out).await.map_err(|e| match e {
        DavClientError::Local(e) => crate::cli::output::stdout_error(e),
        e => failed("read", remote, e),
    })?;
    out.flush().await.map_err(crate::cli::output::stdout_error)?;
    Ok(n)
}

/// Downloads the file at `remote` to `local` (into it when it is a directory), atomically; returns the path
/// written and its size.
pub async fn download(s: &mut FsSession, remote: &str, local: &Path) -> Result<(PathBuf, u64), CliError> {
    let entry = stat_file(s, "download", remote).await?;
    let dest = destination(local, remote_name(&entry.path))?;
    let fail = |e: &dyn std::fmt::Display| CliError::new(format!("download {} to {}: {e}", entry.path, dest.display()));
    let mut file = AtomicFile::create(&dest, DOWNLOAD_MODE).map_err(|e| fail(&e))?;
    let mut progress = Progress::new(format!("download {}", entry.path), entry.size);
    let out = MeteredWriter::new(AssertAsync::new(file.as_file_mut()), &mut progress);
    let bytes = s.client.read(remote, out).await.map_err(|e| fail(&e))?;
    file.commit().map_err(|e| fail(&e))?;
    progress.finish();
    Ok((dest, bytes))
}

/// Where a download of the file `name` to `local` lands: inside `local` when it is a directory (a symlink to one
/// only when written with a trailing `/`, so a link planted in a shared directory cannot redirect the file);
/// else at `local` itself, whose rename replaces a symlink there instead of following it.
fn destination(local: &Path, name: &str) -> Result<PathBuf, CliError> {
    let shown = local.display();
    let into_dir = local.as_os_str().as_encoded_bytes().ends_with(b"/");
    match std::fs::symlink_metadata(local) {
        Ok(meta) if meta.is_dir() => Ok(local.join(name)),
        Ok(meta) if meta.file_type().is_symlink() && local.is_dir() => {
            if into_dir {
                Ok(local.join(name))
            } else {
                Err(CliError::new(format!(
                    "download to {shown}: it is a symlink to a directory; write {shown}/ to download into it"
                )))
            }
        }
        _ if into_dir => Err(CliError::new(format!("download to {shown}: no such directory"))),
        _ => Ok(local.to_path_buf()),
    }
}

/// The last component of a normalised remote file path.
fn remote_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Writes stdin to `remote` (streamed, chunked); returns the bytes sent.
pub async fn write_stdin(s: &mut FsSession, remote: &str) -> Result<u64, CliError> {
    send(s, "write", remote, Source::stdin()).await
}

/// Uploads `local` (a path, or `-` for stdin) to `remote` (a directory path ending in `/` gets the local name);
/// returns the remote path and the bytes sent.
pub async fn upload(s: &mut FsSession, local: &str, remote: &str) -> Result<(String, u64), CliError> {
    let source = Source::open(local)?;
    let remote = match (remote.ends_with('/'), Path::new(local).file_name()) {
        (true, Some(name)) if local != "-" => normalize_path(&format!("{remote}{}", name.to_string_lossy())),
        _ => normalize_path(remote),
    };
    let bytes = send(s, "upload", &remote, source).await?;
    Ok((remote, bytes))
}

/// Where an upload's bytes come from, and how many there are when that is known up front.
struct Source {
    reader: Box<dyn AsyncRead + Unpin>,
    len: Option<u64>,
}

impl Source {
    fn stdin() -> Source {
        Source { reader: Box::new(smol::Unblock::new(std::io::stdin())), len: None }
    }

    /// Opens `local`: `-` is stdin; a regular file has a length; a directory is refused; anything else (pipe,
    /// FIFO, character device, socket) is read until it ends.
    fn open(local: &str) -> Result<Source, CliError> {
        if local == "-" {
            return Ok(Source::stdin());
        }
        let fail = |e: std::io::Error| CliError::new(format!("upload {local}: {e}"));
        let file = std::fs::File::open(local).map_err(fail)?;
        let meta = file.metadata().map_err(fail)?;
        if meta.is_dir() {
            return Err(CliError::new(format!("upload {local}: {local} is a directory (upload its files one by one)")));
        }
        let len = meta.is_file().then_some(meta.len());
        Ok(Source { reader: Box::new(smol::fs::File::from(file)), len })
    }
}

/// PUTs `source` to `remote` for `op` (`write`, `upload`), with a meter; returns the bytes sent.
async fn send(s: &mut FsSession, op: &str, remote: &str, source: Source) -> Result<u64, CliError> {
    let mut progress = Progress::new(format!("{op} {}", normalize_path(remote)), source.len);
    s.client
        .write(remote, MeteredReader::new(source.reader, &mut progress), source.len)
        .await
        .map_err(|e| failed(op, remote, e))?;
    let bytes = progress.bytes();
    progress.finish();
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_know_their_length_only_for_regular_files() {
        let dir = std::env::temp_dir().join(format!("rstream-fs-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f.txt");
        std::fs::write(&file, "12345").unwrap();
        assert_eq!(Source::open(file.to_str().unwrap()).unwrap().len, Some(5));
        assert_eq!(Source::open("/dev/null").unwrap().len, None, "a character device streams");
        assert_eq!(Source::open("-").unwrap().len, None);
        let err = Source::open(dir.to_str().unwrap()).err().unwrap().to_string();
        assert!(err.contains("is a directory"), "{err}");
        let err = Source::open(dir.join("missing").to_str().unwrap()).err().unwrap().to_string();
        assert!(err.contains("missing") && err.contains("No such file"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn downloads_land_inside_real_directories_and_symlinks_to_them_only_with_a_slash() {
        let dir = std::env::temp_dir().join(format!("rstream-fs-dest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("real")).unwrap();
        std::os::unix::fs::symlink(dir.join("real"), dir.join("link")).unwrap();
        let at = |p: &str| destination(&dir.join(p), "app.log").map(|d| d.strip_prefix(&dir).unwrap().to_owned());
        assert_eq!(at("real").unwrap(), Path::new("real/app.log"));
        assert_eq!(at("real/").unwrap(), Path::new("real/app.log"));
        assert_eq!(at("link/").unwrap(), Path::new("link/app.log"));
        assert!(at("link").unwrap_err().to_string().contains("symlink to a directory"));
        assert_eq!(at("new.log").unwrap(), Path::new("new.log"));
        assert!(at("missing/").unwrap_err().to_string().contains("no such directory"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn remote_names_are_the_last_component() {
        assert_eq!(remote_name("/logs/app.log"), "app.log");
        assert_eq!(remote_name("/a"), "a");
    }
}
