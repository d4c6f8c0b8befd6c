//! Namespace operations: DELETE, MKCOL, COPY and MOVE (RFC 4918 §9.3, §9.6, §9.8, §9.9).
//!
//! Sources and destinations are both confined (a `Destination` on another host is 502, outside the mount or
//! hostile 403, through a symlink leaving the root 403). DELETE and MOVE act on entries themselves (a symlink is
//! removed or moved, never its target); COPY follows symlinks inside the root. Locks must be submitted for the
//! resources touched and their parent collections (423 otherwise); member failures of a tree COPY are answered
//! with 207 listing them. A directory holding one of the agent's secrets cannot be deleted, copied, moved or
//! overwritten, and nothing can be copied or moved to where a secret belongs (403).

use futures_lite::{AsyncRead, AsyncWrite};

use super::error::{DavError, Failure};
use super::fsio::{copy_dir, copy_file, remove_entry, MemberErrors};
use super::handler::{parse_depth, DavRequest, Depth, WebDav};
use super::path::DavPath;
use super::xml::escape;
use crate::http::{ResponseHead, ServerConn};

impl WebDav {
    pub(crate) async fn delete<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut ServerConn<S>,
        req: &DavRequest<'_>,
    ) -> Result<(), Failure> {
        if req.path.is_root() {
            return Err(DavError::forbidden("the root collection cannot be deleted").into());
        }
        if parse_depth(req.head, "infinity")? != Depth::Infinity {
            return Err(DavError::bad_request("DELETE needs Depth: infinity").into());
        }
        let located = self.root.locate(&req.path).map_err(|e| not_found_if_conflict(e, &req.path))?;
        let meta = located.meta.clone().ok_or_else(|| DavError::not_found(&req.path.key()))?;
        self.root.refuse_holding(&located.path, &req.path)?;
        self.check_locks(req, &req.path, true, true)?;
        remove_entry(&located.path, &meta, &req.path)?;
        self.locks().remove_subtree(&req.path);
        self.props().remove_subtree(&req.path.key());
        Ok(conn.respond(ResponseHead::new(204), b"").await?)
    }

    pub(crate) async fn mkcol<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut ServerConn<S>,
        req: &DavRequest<'_>,
    ) -> Result<(), Failure> {
        let located = self.root.locate(&req.path)?;
        if conn.body_len() != Some(0) {
            return Err(DavError::new(415, "MKCOL with a request body is not supported").into());
        }
        if located.exists() {
            return Err(DavError::new(405, format!("{:?} already exists", req.path.key())).into());
        }
        self.check_locks(req, &req.path, false, true)?;
        std::fs::create_dir(&located.path).map_err(|e| DavError::io(e, &req.path.key()))?;
        Ok(conn.respond(ResponseHead::new(201), b"").await?)
    }

    pub(crate) async fn copy_or_move<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut ServerConn<S>,
        req: &DavRequest<'_>,
        is_move: bool,
    ) -> Result<(), Failure> {
        let dest_url =
            req.head.headers.get("destination").ok_or_else(|| DavError::bad_request("missing Destination"))?;
        let dest = self.url_to_path(dest_url, req.head)?;
        let overwrite = match req.head.headers.get("overwrite").map(str::trim) {
            None | Some("T" | "t") => true,
            Some("F" | "f") => false,
            Some(other) => return Err(DavError::bad_request(format!("invalid Overwrite {other:?}")).into()),
        };
        let depth = parse_depth(req.head, "infinity")?;
        if depth == Depth::One || (is_move && depth != Depth::Infinity) {
            return Err(DavError::bad_request("invalid Depth for COPY/MOVE").into());
        }
        if req.path.is_root() && is_move {
            return Err(DavError::forbidden("the root collection cannot be moved").into());
        }
        if dest.starts_with(&req.path) || req.path.starts_with(&dest) {
            let msg = format!("source {:?} and destination {:?} overlap", req.path.key(), dest.key());
            return Err(DavError::forbidden(msg).into());
        }
        let src = self.root.locate(&req.path).map_err(|e| not_found_if_conflict(e, &req.path))?;
        let src_meta = src.meta.clone().ok_or_else(|| DavError::not_found(&req.path.key()))?;
        let src_target = src.follow(&self.root)?; // a source symlink leaving the root is refused
                                                  // Neither side may take a secret along, replace one, or put something where one belongs.
        self.root.refuse_holding(&src.path, &req.path)?;
        if let Some((target, _)) = &src_target {
            self.root.refuse_holding(target, &req.path)?;
        }
        let dst = self.root.locate(&dest)?;
        self.root.refuse_holding(&dst.path, &dest)?;
        let dst_existed = dst.exists();
        if dst_existed {
            dst.follow(&self.root)?; // a destination symlink leaving the root is refused, not replaced
            if !overwrite {
                return Err(DavError::new(412, format!("{:?} exists and Overwrite is F", dest.key())).into());
            }
        }
        if is_move {
            self.check_locks(req, &req.path, true, true)?;
        }
        self.check_locks(req, &dest, true, true)?;
        if let Some(meta) = &dst.meta {
            remove_entry(&dst.path, meta, &dest)?;
            self.locks().remove_subtree(&dest);
            self.props().remove_subtree(&dest.key());
        }
        let mut errors = MemberErrors::default();
        let renamed = is_move
            && match std::fs::rename(&src.path, &dst.path) {
                Ok(()) => true,
                Err(e) if e.raw_os_error() == Some(libc::EXDEV) => false,
                Err(e) => return Err(DavError::io(e, &req.path.key()).into()),
            };
        if !renamed {
            let (target, meta) = src_target.ok_or_else(|| DavError::not_found(&req.path.key()))?;
            if meta.is_dir() {
                errors = copy_dir(&self.root, &target, &req.path, &dst.path, &dest, depth == Depth::Infinity).await?;
            } else {
                copy_file(&self.root, &target, &req.path, &dst.parent, &dst.path, &dest).await?;
            }
            if is_move && errors.is_empty() {
                remove_entry(&src.path, &src_meta, &req.path)?;
            }
        }
        if is_move && errors.is_empty() {
            self.locks().remove_subtree(&req.path);
            self.props().move_subtree(&req.path.key(), &dest.key());
        } else if !is_move {
            self.props().copy_subtree(&req.path.key(), &dest.key());
        }
        if !errors.is_empty() {
            return Ok(self.respond_member_errors(conn, &errors).await?);
        }
        Ok(conn.respond(ResponseHead::new(if dst_existed { 204 } else { 201 }), b"").await?)
    }

    /// 207 listing the members that failed (bounded; the rest are counted in a comment).
    async fn respond_member_errors<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut ServerConn<S>,
        errors: &MemberErrors,
    ) -> std::io::Result<()> {
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\">");
        for (path, e) in &errors.listed {
            xml.push_str(&format!(
                "<D:response><D:href>{}</D:href><D:status>HTTP/1.1 {} {}</D:status><D:responsedescription>{}</D:responsedescription></D:response>",
                escape(&path.href(&self.mount, false)),
                e.status,
                crate::http::reason_phrase(e.status),
                escape(&e.message)
            ));
        }
        if errors.more > 0 {
            xml.push_str(&format!("<!-- {} more failures -->", errors.more));
        }
        xml.push_str("</D:multistatus>\n");
        let head = ResponseHead::new(207).header("Content-Type", "application/xml; charset=utf-8");
        conn.respond(head, xml.as_bytes()).await
    }
}

/// For a resource that must exist, a missing parent means the resource is missing.
pub(crate) fn not_found_if_conflict(e: DavError, path: &DavPath) -> DavError {
    if e.status == 409 {
        DavError::not_found(&path.key())
    } else {
        e
    }
}
