//! The LOCK and UNLOCK methods (RFC 4918 §9.10–9.11) over the in-memory [`LockTable`](super::lock::LockTable).
//!
//! LOCK with a `lockinfo` body grants an exclusive or shared write lock (Depth 0 or infinity, `Timeout`
//! honoured up to `limits::WEBDAV_LOCK_MAX_TIMEOUT`); on an unmapped URL it first creates an empty file (201).
//! LOCK without a body refreshes the lock whose token the `If` header submits. UNLOCK removes the lock named by
//! `Lock-Token`.

use futures_lite::{AsyncRead, AsyncWrite};

use super::error::{DavError, Failure};
use super::fsio::{commit_version, new_version};
use super::handler::{parse_depth, read_small_body, DavRequest, Depth, WebDav};
use super::lock::{parse_timeout, Lock};
use super::propfind::active_lock;
use super::props::{children, serialize};
use super::xml::{parse_all, DAV_NS};
use crate::http::{ResponseHead, ServerConn};
use crate::limits::MAX_WEBDAV_LOCK_OWNER_LEN;

/// What a `lockinfo` body asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockInfo {
    /// Exclusive (else shared).
    pub exclusive: bool,
    /// The `<owner>` content as self-contained XML.
    pub owner: Option<String>,
}

/// Parses a `lockinfo` body (only write locks exist).
pub fn parse_lockinfo(body: &[u8]) -> Result<LockInfo, DavError> {
    let events = parse_all(body).map_err(|e| DavError::bad_request(e.to_string()))?;
    let roots = children(&events);
    let [(root, inside)] = roots.as_slice() else { return Err(DavError::bad_request("LOCK body has no root")) };
    if !root.is_dav("lockinfo") {
        return Err(DavError::bad_request("LOCK body is not a DAV:lockinfo"));
    }
    let mut info = LockInfo { exclusive: true, owner: None };
    let mut write = false;
    for (name, value) in children(inside) {
        match (name.ns.as_str(), name.local.as_str()) {
            (DAV_NS, "lockscope") => info.exclusive = children(value).iter().any(|(n, _)| n.is_dav("exclusive")),
            (DAV_NS, "locktype") => write = children(value).iter().any(|(n, _)| n.is_dav("write")),
            (DAV_NS, "owner") => {
                let owner = serialize(value);
                if owner.len() > MAX_WEBDAV_LOCK_OWNER_LEN {
                    return Err(DavError::bad_request(format!(
                        "lock owner longer than {MAX_WEBDAV_LOCK_OWNER_LEN} bytes"
                    )));
                }
                info.owner = Some(owner);
            }
            _ => {}
        }
    }
    if !write {
        return Err(DavError::new(422, "only write locks are supported"));
    }
    Ok(info)
}

impl WebDav {
    pub(crate) async fn lock<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut ServerConn<S>,
        req: &DavRequest<'_>,
    ) -> Result<(), Failure> {
        let timeout = parse_timeout(req.head.headers.get("timeout"));
        let located = self.root.locate(&req.path)?;
        located.follow(&self.root)?;
        let body = read_small_body(conn).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            let token = req.tokens.first().ok_or_else(|| {
                DavError::new(412, "lock refresh needs the lock token in an If header")
                    .with_condition("<D:lock-token-submitted/>")
            })?;
            let lock = self.locks().refresh(token, &req.path, timeout)?;
            return Ok(self.respond_lock(conn, &lock, 200).await?);
        }
        let info = parse_lockinfo(&body)?;
        let infinite = match parse_depth(req.head, "infinity")? {
            Depth::Zero => false,
            Depth::Infinity => true,
            Depth::One => return Err(DavError::bad_request("LOCK needs Depth 0 or infinity").into()),
        };
        let created = !located.exists();
        if created {
            // Locking an unmapped URL creates an empty resource (RFC 4918 §7.3).
            self.check_locks(req, &req.path, false, true)?;
            commit_version(new_version(&self.root, &located.path, &req.path)?, None, &req.path)?;
        }
        let lock = self.locks().lock(&req.path, infinite, info.exclusive, info.owner, timeout);
        let lock = match lock {
            Ok(lock) => lock,
            Err(e) => {
                if created {
                    let _ = std::fs::remove_file(&located.path);
                }
                return Err(e.into());
            }
        };
        Ok(self.respond_lock(conn, &lock, if created { 201 } else { 200 }).await?)
    }

    async fn respond_lock<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut ServerConn<S>,
        lock: &Lock,
        status: u16,
    ) -> std::io::Result<()> {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:prop xmlns:D=\"DAV:\"><D:lockdiscovery>{}</D:lockdiscovery></D:prop>\n",
            active_lock(lock, &self.mount)
        );
        let head = ResponseHead::new(status)
            .header("Content-Type", "application/xml; charset=utf-8")
            .header("Lock-Token", format!("<{}>", lock.token));
        conn.respond(head, body.as_bytes()).await
    }

    pub(crate) async fn unlock<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut ServerConn<S>,
        req: &DavRequest<'_>,
    ) -> Result<(), Failure> {
        let header = req.head.headers.get("lock-token").ok_or_else(|| DavError::bad_request("missing Lock-Token"))?;
        let token = header.trim().trim_start_matches('<').trim_end_matches('>');
        self.locks().unlock(token, &req.path)?;
        Ok(conn.respond(ResponseHead::new(204), b"").await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockinfo_bodies() {
        let body = br#"<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:shared/></D:lockscope>
            <D:locktype><D:write/></D:locktype><D:owner><D:href>mailto:a@b</D:href></D:owner></D:lockinfo>"#;
        let info = parse_lockinfo(body).unwrap();
        assert!(!info.exclusive);
        assert!(info.owner.unwrap().contains("mailto:a@b"));
        let no_write = br#"<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope></D:lockinfo>"#;
        assert_eq!(parse_lockinfo(no_write).unwrap_err().status, 422);
    }
}
