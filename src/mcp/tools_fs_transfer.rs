//! `rstream_webtty_fs_download` and `rstream_webtty_fs_upload`: copies between THIS machine (where the MCP
//! server runs) and a WebTTY server's filesystem.
//!
//! A download streams into a 0600 [`AtomicFile`] next to the destination (an unguessable name, created new and
//! no-follow; new parent directories 0700), synced, then put in place with [`AtomicFile::commit_new`] (refuses
//! anything already there, a planted symlink included, without a check-then-write race) or, with `overwrite`,
//! [`AtomicFile::commit`] (replaces the destination itself, never what a symlink there points to). An upload streams a regular local file of at most [`MCP_FS_UPLOAD_MAX`] bytes with its
//! length; the server replaces the remote file atomically, and an existing one only with `overwrite`.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::args::{Args, ToolError};
use super::catalog::CallContext;
use super::fs_session::{Access, Capped};
use super::result::ToolOutput;
use super::schema::{boolean, field, string, ToolSpec};
use super::tools_fs::{done_output, op_error, session, spec};
use crate::atomic_file::{create_parent, AtomicFile};
use crate::limits::{MCP_FS_DOWNLOAD_MAX, MCP_FS_UPLOAD_MAX};
use crate::webdav::{normalize_path, EntryKind};

const LOCAL_PATH: &str = "on this machine (absolute, ~/…, or relative to the MCP server's working directory).";

/// The tools of this family.
pub fn specs() -> Vec<ToolSpec> {
    let bytes = || ("bytes", field(json!("integer"), "Bytes copied."));
    vec![
        spec(
            "rstream_webtty_fs_download",
            "Download remote file",
            "Copies a remote file to THIS machine (where the MCP server runs): the local file is created with mode \
             0600 (missing parent directories 0700) and an existing file is only replaced with overwrite=true.",
            vec![
                ("path", string("Remote file, relative to the server's fs root.")),
                ("local_path", string(&format!("Destination {LOCAL_PATH}"))),
                ("overwrite", boolean("Replace an existing local file; default false.")),
            ],
            &["url", "path", "local_path"],
            done_output(&[bytes(), ("remote_path", string("The remote file copied."))]),
        ),
        spec(
            "rstream_webtty_fs_upload",
            "Upload local file",
            "Copies a file of THIS machine (where the MCP server runs) to a WebTTY server with the `fs` capability \
             and fs_mode read-write. The remote parent directory must exist; an existing remote file is only \
             replaced with overwrite=true.",
            vec![
                ("local_path", string(&format!("The file to send, {LOCAL_PATH}"))),
                ("path", string("Remote destination, relative to the server's fs root.")),
                ("overwrite", boolean("Replace an existing remote file; default false.")),
            ],
            &["url", "local_path", "path"],
            done_output(&[bytes(), ("local_path", string("The local file sent."))]),
        ),
    ]
}

/// Runs `name` if it belongs to this family.
pub fn call(name: &str, args: &Args, ctx: &CallContext<'_>) -> Option<Result<ToolOutput, ToolError>> {
    Some(match name {
        "rstream_webtty_fs_download" => download(args, ctx),
        "rstream_webtty_fs_upload" => upload(args, ctx),
        _ => return None,
    })
}

fn download(args: &Args, ctx: &CallContext<'_>) -> Result<ToolOutput, ToolError> {
    let path = normalize_path(&args.required_str("path")?);
    let local = local_path(&args.required_str("local_path")?)?;
    let overwrite = args.opt_bool("overwrite")?.unwrap_or(false);
    if local.is_dir() {
        return Err(ToolError(format!("local_path {} is a directory: name the file to create", local.display())));
    }
    if local.exists() && !overwrite {
        return Err(ToolError(format!("local file {} exists; pass overwrite=true to replace it", local.display())));
    }
    create_parent(&local).map_err(|e| ToolError(format!("cannot create the directory of {}: {e}", local.display())))?;
    let mut file = AtomicFile::create(&local, DOWNLOAD_MODE)
        .map_err(|e| ToolError(format!("cannot create a temp file next to {}: {e}", local.display())))?;
    let bytes = fetch_into(args, ctx, &path, &mut file)?;
    place(file, &local, overwrite)?;
    Ok(ToolOutput::json(json!({"ok": true, "path": local.display().to_string(), "bytes": bytes, "remote_path": path})))
}

/// Mode of a downloaded file (before the umask): the agent's copy is the operator's alone.
const DOWNLOAD_MODE: u32 = 0o600;

fn upload(args: &Args, ctx: &CallContext<'_>) -> Result<ToolOutput, ToolError> {
    let local = local_path(&args.required_str("local_path")?)?;
    let path = normalize_path(&args.required_str("path")?);
    if path == "/" {
        return Err(ToolError::new("argument \"path\" must name a file, not the filesystem root \"/\""));
    }
    let overwrite = args.opt_bool("overwrite")?.unwrap_or(false);
    let meta = fs::metadata(&local).map_err(|e| ToolError(format!("local file {}: {e}", local.display())))?;
    if !meta.is_file() {
        return Err(ToolError(format!(
            "local_path {} is not a regular file: upload files one by one",
            local.display()
        )));
    }
    if meta.len() > MCP_FS_UPLOAD_MAX {
        let len = meta.len();
        return Err(ToolError(format!("{} is {len} bytes, over the {MCP_FS_UPLOAD_MAX} byte limit", local.display())));
    }
    let bytes = ctx.block_on(async {
        let mut s = session(args, ctx, Access::Change).await?;
        if !overwrite {
            match s.client.stat(&path).await {
                Ok(_) => {
                    return Err(ToolError(format!("{path} exists on {}; pass overwrite=true to replace it", s.server)))
                }
                Err(e) if e.status() == Some(404) => {}
                Err(e) => return Err(op_error("upload", &path, &s, e)),
            }
        }
        let file = smol::fs::File::open(&local).await.map_err(|e| ToolError(format!("{}: {e}", local.display())))?;
        // The length sent is the one checked; a file that changes meanwhile fails the upload, not the cap.
        s.client.write(&path, file, Some(meta.len())).await.map_err(|e| op_error("upload", &path, &s, e))?;
        Ok(meta.len())
    })?;
    Ok(ToolOutput::json(json!({"ok": true, "path": path, "bytes": bytes, "local_path": local.display().to_string()})))
}

/// Streams the remote file into `file` (at most [`MCP_FS_DOWNLOAD_MAX`] bytes); committing it syncs it.
fn fetch_into(args: &Args, ctx: &CallContext<'_>, path: &str, file: &mut AtomicFile) -> Result<u64, ToolError> {
    ctx.block_on(async {
        let mut s = session(args, ctx, Access::Read).await?;
        let entry = s.client.stat(path).await.map_err(|e| op_error("download", path, &s, e))?;
        if entry.kind == EntryKind::Directory {
            return Err(ToolError(format!("{path} on {} is a directory: download files one by one", s.server)));
        }
        let mut out = Capped::new(file, MCP_FS_DOWNLOAD_MAX);
        if let Err(e) = s.client.read(path, &mut out).await {
            if out.overflowed() {
                return Err(ToolError(format!("{path} is larger than {MCP_FS_DOWNLOAD_MAX} bytes; not downloaded")));
            }
            return Err(op_error("download", path, &s, e));
        }
        Ok(out.written())
    })
}

/// Puts the finished download in place: [`AtomicFile::commit_new`] refuses an existing file (when not
/// overwriting) without a check-then-write race; [`AtomicFile::commit`] replaces it atomically.
fn place(file: AtomicFile, local: &Path, overwrite: bool) -> Result<(), ToolError> {
    let placed = if overwrite { file.commit() } else { file.commit_new() };
    placed.map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            ToolError(format!("local file {} exists; pass overwrite=true to replace it", local.display()))
        }
        _ => ToolError(format!("cannot write {}: {e}", local.display())),
    })
}

/// `~/x` expanded, relative paths made absolute (against the MCP server's working directory).
fn local_path(raw: &str) -> Result<PathBuf, ToolError> {
    let expanded = match raw.strip_prefix("~/") {
        Some(rest) => match std::env::var_os("HOME") {
            Some(home) => Path::new(&home).join(rest),
            None => return Err(ToolError::new("local_path starts with ~ but HOME is not set")),
        },
        None => PathBuf::from(raw),
    };
    std::path::absolute(&expanded).map_err(|e| ToolError(format!("local_path {raw:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_never_replace_a_file_unless_asked() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("rstream-mcp-place-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let dest = dir.join("d");
        let new_file = || {
            let mut file = AtomicFile::create(&dest, DOWNLOAD_MODE).unwrap();
            file.write_all(b"new").unwrap();
            file
        };
        fs::write(&dest, "old").unwrap();
        assert!(place(new_file(), &dest, false).unwrap_err().0.contains("overwrite=true"));
        assert_eq!(fs::read_to_string(&dest).unwrap(), "old");
        place(new_file(), &dest, true).unwrap();
        assert_eq!(fs::read_to_string(&dest).unwrap(), "new");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "temp files left");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn local_paths_expand_home_and_become_absolute() {
        let p = local_path("out/x.txt").unwrap();
        assert!(p.is_absolute() && p.ends_with("out/x.txt"));
        if let Some(home) = std::env::var_os("HOME") {
            assert_eq!(local_path("~/a").unwrap(), Path::new(&home).join("a"));
        }
    }

    #[test]
    fn uploads_refuse_directories_and_missing_files_before_connecting() {
        let (env, cancel, servers) = (Default::default(), super::super::cancel::Cancel::never(), Default::default());
        let ctx = CallContext { env: &env, cancel: &cancel, servers: &servers };
        let dir = std::env::temp_dir();
        let args = Args::from_value(json!({"url": "ws://127.0.0.1:1", "local_path": dir, "path": "/x"}));
        assert!(upload(&args, &ctx).unwrap_err().0.contains("not a regular file"));
        let args = Args::from_value(json!({"url": "ws://127.0.0.1:1", "local_path": "/nonexistent/f", "path": "/x"}));
        assert!(upload(&args, &ctx).unwrap_err().0.starts_with("local file /nonexistent/f"));
    }
}
