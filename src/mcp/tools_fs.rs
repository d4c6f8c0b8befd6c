//! `rstream_webtty_fs_list|read|write|mkdir|delete|download`: files on a WebTTY server's WebDAV sidecar.
//!
//! Paths are relative to the server's `--fs-root` (`/` is that root) and normalised by the WebDAV client
//! (never above `/`). Every tool first goes through [`super::fs_session::open`], which refuses exec-only and
//! (for changes) read-only servers before contacting the sidecar. Reads are capped (`max_bytes`, flagged
//! `truncated`); downloads land in a 0600 file (new parent directories 0700) through [`AtomicFile`] (a temp file
//! with an unguessable name, created new and no-follow next to the destination, fsynced, then put in place) and
//! never replace an existing file unless `overwrite` is true.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::args::{Args, ToolError};
use super::fs_session::{open, Access, Capped, FsSession};
use super::operator_env::OperatorEnv;
use super::result::ToolOutput;
use super::schema::{boolean, number, one_of, string, ToolSpec};
use crate::atomic_file::{create_parent, AtomicFile};
use crate::encoding::Base64;
use crate::limits::{MCP_FS_DOWNLOAD_MAX, MCP_FS_LIST_MAX, MCP_FS_READ_DEFAULT_MAX, MCP_FS_READ_MAX};
use crate::webdav::{normalize_path, DavClientError, EntryKind};

const URL: &str = "The server's rstream_url (rstrm://NAME), a bare server name, or ws://HOST:PORT of a local server.";
const FS_PATH: &str = "WebDAV mount path on the server; default: the server's advertised fs_path (/fs).";

fn spec(
    name: &'static str,
    title: &'static str,
    description: &'static str,
    extra: Vec<(&'static str, serde_json::Value)>,
    required: &'static [&'static str],
) -> ToolSpec {
    let mut properties = vec![("url", string(URL))];
    properties.extend(extra);
    properties.push(("fs_path", string(FS_PATH)));
    ToolSpec { name, title, description, properties, required, open_world: true }
}

/// The tools of this family.
pub fn specs() -> Vec<ToolSpec> {
    let path = |what: &'static str| ("path", string(what));
    vec![
        spec(
            "rstream_webtty_fs_list",
            "List remote files",
            "Lists a directory on a WebTTY server with the `fs` capability: {path, kind: file|directory, size, \
             modified} per entry. Paths are relative to the server's fs root.",
            vec![path("Directory to list; default /.")],
            &["url"],
        ),
        spec(
            "rstream_webtty_fs_read",
            "Read remote file",
            "Reads a file from a WebTTY server with the `fs` capability. encoding text (default) returns the text \
             itself; base64 returns {encoding, content}. At most max_bytes are returned (default 1 MiB, up to 4 MiB); \
             `truncated` tells whether the file is longer.",
            vec![
                path("File to read, relative to the server's fs root."),
                ("encoding", one_of(&["text", "base64"], "text (default; UTF-8 files) or base64 (any bytes).")),
                ("max_bytes", number(1, "Most bytes to return (default 1048576, at most 4194304).")),
            ],
            &["url", "path"],
        ),
        spec(
            "rstream_webtty_fs_write",
            "Write remote file",
            "Creates or replaces a file on a WebTTY server with the `fs` capability and fs_mode read-write. The \
             parent directory must exist (see rstream_webtty_fs_mkdir).",
            vec![
                path("File to write, relative to the server's fs root."),
                ("content", string("The new file contents (text, or base64 with encoding=base64).")),
                ("encoding", one_of(&["text", "base64"], "How `content` is encoded; default text.")),
            ],
            &["url", "path", "content"],
        ),
        spec(
            "rstream_webtty_fs_mkdir",
            "Create remote directory",
            "Creates a directory on a WebTTY server with the `fs` capability (an existing one is fine). The parent \
             must exist.",
            vec![path("Directory to create, relative to the server's fs root.")],
            &["url", "path"],
        ),
        spec(
            "rstream_webtty_fs_delete",
            "Delete remote file",
            "Deletes a file, or a directory with everything in it, on a WebTTY server with the `fs` capability.",
            vec![path("File or directory to delete, relative to the server's fs root (not / itself).")],
            &["url", "path"],
        ),
        spec(
            "rstream_webtty_fs_download",
            "Download remote file",
            "Copies a remote file to THIS machine (where the MCP server runs): the local file is created with mode \
             0600 (missing parent directories 0700) and an existing file is only replaced with overwrite=true.",
            vec![
                path("Remote file, relative to the server's fs root."),
                (
                    "local_path",
                    string(
                        "Destination on this machine (absolute, ~/…, or relative to the MCP server's \
                                       working directory).",
                    ),
                ),
                ("overwrite", boolean("Replace an existing local file; default false.")),
            ],
            &["url", "path", "local_path"],
        ),
    ]
}

/// Runs `name` if it belongs to this family.
pub fn call(name: &str, args: &Args, env: &OperatorEnv) -> Option<Result<ToolOutput, ToolError>> {
    let run = match name {
        "rstream_webtty_fs_list" => list,
        "rstream_webtty_fs_read" => read,
        "rstream_webtty_fs_write" => write,
        "rstream_webtty_fs_mkdir" => mkdir,
        "rstream_webtty_fs_delete" => delete,
        "rstream_webtty_fs_download" => download,
        _ => return None,
    };
    Some(run(args, env))
}

/// Connects for `access`, from the `url` and `fs_path` arguments.
async fn session(args: &Args, env: &OperatorEnv, access: Access) -> Result<FsSession, ToolError> {
    let url = args.required_str("url")?;
    let fs_path = args.opt_str("fs_path")?;
    open(env, &url, fs_path.as_deref(), access).await
}

/// A failed operation, with the path and server and a hint for the common statuses.
fn op_error(op: &str, path: &str, s: &FsSession, e: DavClientError) -> ToolError {
    let hint = match e.status() {
        Some(404) => " (no such file or directory)",
        Some(403) | Some(405) => " (the server refused: read-only filesystem, or not allowed on this path)",
        Some(409) => " (the parent directory does not exist: create it with rstream_webtty_fs_mkdir)",
        Some(413) => " (larger than the server's --fs-max-upload-size)",
        _ => "",
    };
    ToolError(format!("{op} {path} on {}: {e}{hint}", s.server))
}

fn list(args: &Args, env: &OperatorEnv) -> Result<ToolOutput, ToolError> {
    let path = normalize_path(&args.opt_str("path")?.unwrap_or_else(|| "/".into()));
    let mut entries = smol::block_on(async {
        let mut s = session(args, env, Access::Read).await?;
        s.client.list(&path).await.map_err(|e| op_error("list", &path, &s, e))
    })?;
    if entries.len() <= MCP_FS_LIST_MAX {
        return Ok(ToolOutput::json(entries));
    }
    let total = entries.len();
    entries.truncate(MCP_FS_LIST_MAX);
    Ok(ToolOutput::json(json!({"result": entries, "truncated": true, "total": total})))
}

fn read(args: &Args, env: &OperatorEnv) -> Result<ToolOutput, ToolError> {
    let path = normalize_path(&args.required_str("path")?);
    let base64 = encoding(args)?;
    let max = match args.opt_u64("max_bytes")? {
        None => MCP_FS_READ_DEFAULT_MAX,
        Some(n) if (1..=MCP_FS_READ_MAX).contains(&n) => n,
        Some(n) => {
            return Err(ToolError(format!("argument \"max_bytes\" must be between 1 and {MCP_FS_READ_MAX}, got {n}")))
        }
    };
    // Read past the cap by the longest secret form, so a secret crossing the cap is scrubbed whole before the cut.
    let secrets = env.secrets();
    let (size, mut bytes, cut_short) = smol::block_on(async {
        let mut s = session(args, env, Access::Read).await?;
        let entry = s.client.stat(&path).await.map_err(|e| op_error("read", &path, &s, e))?;
        if entry.kind == EntryKind::Directory {
            return Err(ToolError(format!("{path} on {} is a directory: use rstream_webtty_fs_list", s.server)));
        }
        let mut out = Capped::new(Vec::new(), max + secrets.lookahead() as u64);
        match s.client.read(&path, &mut out).await {
            Ok(_) => {}
            Err(_) if out.overflowed() => {}
            Err(e) => return Err(op_error("read", &path, &s, e)),
        }
        let cut_short = out.overflowed();
        Ok((entry.size, out.into_inner(), cut_short))
    })?;
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    if base64 {
        // Binary content is not rewritten: it is cut before any secret crossing the cap, and its base64 is
        // scrubbed (offset forms) with the rest of the result.
        let truncated = secrets.cut_bytes(&mut bytes, max, cut_short);
        let mut facts = json!({"path": path, "size": size, "bytes": bytes.len(), "truncated": truncated});
        facts["encoding"] = json!("base64");
        facts["content"] = json!(Base64::Standard.encode(&bytes));
        return Ok(ToolOutput::json(facts));
    }
    let (text, cut_short) = utf8_text(bytes, max, cut_short)
        .map_err(|n| ToolError(format!("{path} is not UTF-8 text ({n} bytes read): read it with encoding=base64")))?;
    let (text, truncated) = secrets.scrub_and_cut(&text, max, cut_short);
    let mut facts = json!({"path": path, "size": size, "bytes": text.len(), "truncated": truncated});
    facts["encoding"] = json!("text");
    facts["content"] = json!(text);
    let shown = if truncated {
        format!(
            "{text}\n[truncated after {} bytes; pass a larger max_bytes (up to {MCP_FS_READ_MAX}) to read more]",
            facts["bytes"]
        )
    } else {
        text
    };
    Ok(ToolOutput::Document { text: shown, value: facts })
}

/// The bytes as text, and whether they end before the file does. A cut by the reader (`cut_short`) may split
/// the last character, which is dropped; bytes that are not UTF-8 past `max` (the look-ahead) are dropped too.
/// Err(len) if the first `max` bytes are not UTF-8.
fn utf8_text(mut bytes: Vec<u8>, max: usize, mut cut_short: bool) -> Result<(String, bool), usize> {
    if let Err(e) = std::str::from_utf8(&bytes) {
        if (cut_short && e.error_len().is_none()) || e.valid_up_to() >= max {
            bytes.truncate(e.valid_up_to());
            cut_short = true;
        }
    }
    let len = bytes.len();
    String::from_utf8(bytes).map(|text| (text, cut_short)).map_err(|_| len)
}

fn encoding(args: &Args) -> Result<bool, ToolError> {
    match args.opt_str("encoding")?.as_deref() {
        None | Some("text") => Ok(false),
        Some("base64") => Ok(true),
        Some(other) => Err(ToolError(format!("argument \"encoding\" must be text or base64, got {other:?}"))),
    }
}

fn write(args: &Args, env: &OperatorEnv) -> Result<ToolOutput, ToolError> {
    let path = normalize_path(&args.required_str("path")?);
    let content = args.raw_str("content")?.ok_or_else(|| ToolError::new("missing required argument \"content\""))?;
    let bytes = if encoding(args)? {
        Base64::Standard.decode(content.trim()).map_err(|e| ToolError(format!("argument \"content\": {e}")))?
    } else {
        content.into_bytes()
    };
    if path == "/" {
        return Err(ToolError::new("argument \"path\" must name a file, not the filesystem root"));
    }
    let len = bytes.len() as u64;
    smol::block_on(async {
        let mut s = session(args, env, Access::Change).await?;
        let body = futures_lite::io::Cursor::new(bytes);
        s.client.write(&path, body, Some(len)).await.map_err(|e| op_error("write", &path, &s, e))
    })?;
    Ok(ToolOutput::json(json!({"ok": true, "path": path, "bytes": len})))
}

fn mkdir(args: &Args, env: &OperatorEnv) -> Result<ToolOutput, ToolError> {
    let path = normalize_path(&args.required_str("path")?);
    smol::block_on(async {
        let mut s = session(args, env, Access::Change).await?;
        s.client.mkdir(&path).await.map_err(|e| op_error("mkdir", &path, &s, e))
    })?;
    Ok(ToolOutput::json(json!({"ok": true, "path": path})))
}

fn delete(args: &Args, env: &OperatorEnv) -> Result<ToolOutput, ToolError> {
    let path = normalize_path(&args.required_str("path")?);
    if path == "/" {
        return Err(ToolError::new("refusing to delete the filesystem root \"/\"; name a file or directory in it"));
    }
    smol::block_on(async {
        let mut s = session(args, env, Access::Change).await?;
        s.client.delete(&path).await.map_err(|e| op_error("delete", &path, &s, e))
    })?;
    Ok(ToolOutput::json(json!({"ok": true, "path": path})))
}

fn download(args: &Args, env: &OperatorEnv) -> Result<ToolOutput, ToolError> {
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
    let bytes = fetch_into(args, env, &path, &mut file)?;
    place(file, &local, overwrite)?;
    Ok(ToolOutput::json(json!({"ok": true, "path": local.display().to_string(), "bytes": bytes})))
}

/// Mode of a downloaded file (before the umask): the agent's copy is the operator's alone.
const DOWNLOAD_MODE: u32 = 0o600;

/// Streams the remote file into `file` (at most [`MCP_FS_DOWNLOAD_MAX`] bytes).
fn fetch_into(args: &Args, env: &OperatorEnv, path: &str, file: &mut AtomicFile) -> Result<u64, ToolError> {
    smol::block_on(async {
        let mut s = session(args, env, Access::Read).await?;
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
    fn text_reads_drop_a_character_split_by_the_cap_but_refuse_binary() {
        assert_eq!(utf8_text("héllo".as_bytes()[..2].to_vec(), 10, true).unwrap(), ("h".into(), true));
        assert_eq!(utf8_text(b"plain".to_vec(), 10, false).unwrap(), ("plain".into(), false));
        assert_eq!(utf8_text(vec![0xff, 0x00, 0x41], 10, false), Err(3));
        assert_eq!(utf8_text(vec![0xff, 0x41], 10, true), Err(2));
        // Binary bytes only in the look-ahead past the cap: the text before them is the read.
        assert_eq!(utf8_text(b"text\xff\xfe".to_vec(), 4, false).unwrap(), ("text".into(), true));
    }

    #[test]
    fn downloads_never_replace_a_file_unless_asked() {
        use std::fs;
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
}
