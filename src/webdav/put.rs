//! PUT: the body streams in `COPY_BUF_LEN` chunks into a temp file next to the target, which replaces the
//! target by rename only once the whole body arrived within the upload limit. An oversize upload (declared:
//! 413 before `100 Continue`; chunked: 413 once the limit is passed), a broken connection, or a cancelled task
//! leaves the previous content untouched and no temp file behind. A symlink inside the root is written through
//! (its target is replaced); one leaving the root is refused.

use std::io;

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::error::{DavError, Failure};
use super::fsio::{commit_version, new_version};
use super::handler::{body_failure, etag_of, DavRequest, WebDav};
use crate::http::etag::{if_match_matches, if_none_match_matches};
use crate::http::{HttpError, ResponseHead, ServerConn};
use crate::limits::COPY_BUF_LEN;

impl WebDav {
    pub(crate) async fn put<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut ServerConn<S>,
        req: &DavRequest<'_>,
    ) -> Result<(), Failure> {
        let key = req.path.key();
        if req.path.is_root() {
            return Err(DavError::new(405, "the root collection cannot be replaced by a file").into());
        }
        if req.head.headers.contains("content-range") {
            return Err(DavError::bad_request("partial PUT (Content-Range) is not supported").into());
        }
        let located = self.root.locate(&req.path)?;
        let existing = located.follow(&self.root)?;
        if existing.as_ref().is_some_and(|(_, meta)| meta.is_dir()) {
            return Err(DavError::new(405, format!("{key:?} is a collection")).into());
        }
        let etag = existing.as_ref().map(|(_, meta)| etag_of(meta));
        if let Some(im) = req.head.headers.get("if-match") {
            if !etag.as_deref().is_some_and(|e| if_match_matches(im, e)) {
                return Err(DavError::new(412, "If-Match does not match").into());
            }
        }
        if let Some(inm) = req.head.headers.get("if-none-match") {
            if etag.as_deref().is_some_and(|e| if_none_match_matches(inm, e)) {
                return Err(DavError::new(412, "If-None-Match matches the current file").into());
            }
        }
        self.check_locks(req, &req.path, false, existing.is_none())?;
        if conn.body_len().is_some_and(|n| n > self.max_upload) {
            return Err(too_large(self.max_upload).into());
        }
        let (target, perms) = match &existing {
            Some((target, meta)) => (target.clone(), Some(meta.permissions())),
            None => (located.path.clone(), None),
        };
        let mut temp = new_version(&self.root, &target, &req.path)?;
        let mut body = conn.body().await?;
        let mut buf = vec![0u8; COPY_BUF_LEN];
        let mut total = 0u64;
        loop {
            let n = body.read(&mut buf).await.map_err(|e| body_failure(HttpError::from(e)))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > self.max_upload {
                return Err(too_large(self.max_upload).into());
            }
            io::Write::write_all(&mut temp, &buf[..n]).map_err(|e| DavError::io(e, &key))?;
        }
        commit_version(temp, perms, &req.path)?;
        let mut head = ResponseHead::new(if existing.is_some() { 204 } else { 201 });
        if let Ok(meta) = std::fs::metadata(&target) {
            head = head.header("ETag", etag_of(&meta));
        }
        Ok(conn.respond(head, b"").await?)
    }
}

fn too_large(limit: u64) -> DavError {
    DavError::new(413, format!("upload larger than the {limit}-byte limit"))
}
