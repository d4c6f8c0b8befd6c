//! WebDAV write locks (RFC 4918 §6–7) held in memory, and the `If` header that submits their tokens.
//!
//! At most `limits::MAX_WEBDAV_LOCKS` locks exist at once; each expires after its timeout (at most
//! `limits::WEBDAV_LOCK_MAX_TIMEOUT`, refreshable) and expired locks are purged on every access. Locks are
//! exclusive or shared, depth 0 or infinity. A write to a locked resource, to a member of a locked collection
//! (membership change), or to a collection with locked members needs one of the covering locks' tokens in the
//! `If` header, else 423. Locks live in memory only: a restarted server has none (clients re-lock).

use std::time::{Duration, Instant};

use super::error::DavError;
use super::path::DavPath;
use crate::limits::{MAX_WEBDAV_LOCKS, WEBDAV_LOCK_DEFAULT_TIMEOUT, WEBDAV_LOCK_MAX_TIMEOUT};

/// One granted lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// `urn:uuid:…` state token.
    pub token: String,
    /// The locked resource.
    pub root: DavPath,
    /// Depth infinity (covers every member below `root`).
    pub infinite: bool,
    /// Exclusive (else shared).
    pub exclusive: bool,
    /// The client's `<owner>` XML, bounded by `limits::MAX_WEBDAV_LOCK_OWNER_LEN`.
    pub owner: Option<String>,
    /// Granted timeout.
    pub timeout: Duration,
    /// When the lock lapses.
    pub expires: Instant,
}

impl Lock {
    /// Whether this lock covers `path` (its root, or a member when depth is infinity).
    pub fn covers(&self, path: &DavPath) -> bool {
        *path == self.root || (self.infinite && path.starts_with(&self.root))
    }
}

/// All locks of one handler.
#[derive(Debug, Default)]
pub struct LockTable {
    locks: Vec<Lock>,
}

/// Interprets a `Timeout` header (`Second-600, Infinite`), bounded by `limits::WEBDAV_LOCK_MAX_TIMEOUT`.
pub fn parse_timeout(header: Option<&str>) -> Duration {
    let Some(header) = header else { return WEBDAV_LOCK_DEFAULT_TIMEOUT };
    for choice in header.split(',').map(str::trim) {
        if choice.eq_ignore_ascii_case("infinite") {
            return WEBDAV_LOCK_MAX_TIMEOUT;
        }
        let secs = choice.get(..7).filter(|p| p.eq_ignore_ascii_case("second-")).and_then(|_| choice[7..].parse().ok());
        if let Some(secs) = secs {
            return Duration::from_secs(secs).clamp(Duration::from_secs(1), WEBDAV_LOCK_MAX_TIMEOUT);
        }
    }
    WEBDAV_LOCK_DEFAULT_TIMEOUT
}

fn new_token() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut b = [0u8; 16];
    if getrandom::getrandom(&mut b).is_err() {
        // Without an entropy source, time plus a counter still keeps tokens unique within this process.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        b = (nanos.as_nanos() ^ (u128::from(n) << 64)).to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("urn:uuid:{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

impl LockTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn purge(&mut self) {
        let now = Instant::now();
        self.locks.retain(|l| l.expires > now);
    }

    /// Live locks covering `path`.
    pub fn covering(&mut self, path: &DavPath) -> Vec<Lock> {
        self.purge();
        self.locks.iter().filter(|l| l.covers(path)).cloned().collect()
    }

    /// The live lock with `token`.
    pub fn find(&mut self, token: &str) -> Option<Lock> {
        self.purge();
        self.locks.iter().find(|l| l.token == token).cloned()
    }

    /// Grants a new lock, refusing conflicts (423) and a full table (503).
    pub fn lock(
        &mut self,
        root: &DavPath,
        infinite: bool,
        exclusive: bool,
        owner: Option<String>,
        timeout: Duration,
    ) -> Result<Lock, DavError> {
        self.purge();
        let conflict = self.locks.iter().find(|l| {
            let overlaps = l.covers(root) || (infinite && l.root.starts_with(root));
            overlaps && (exclusive || l.exclusive)
        });
        if let Some(l) = conflict {
            return Err(DavError::new(423, format!("{:?} is already locked", l.root.key())).with_condition(format!(
                "<D:no-conflicting-lock><D:href>{}</D:href></D:no-conflicting-lock>",
                l.root.key()
            )));
        }
        if self.locks.len() >= MAX_WEBDAV_LOCKS {
            return Err(DavError::new(503, format!("too many locks (at most {MAX_WEBDAV_LOCKS})")));
        }
        let lock = Lock {
            token: new_token(),
            root: root.clone(),
            infinite,
            exclusive,
            owner,
            timeout,
            expires: Instant::now() + timeout,
        };
        self.locks.push(lock.clone());
        Ok(lock)
    }

    /// Extends the lock with `token` (which must cover `path`); 412 if there is no such lock.
    pub fn refresh(&mut self, token: &str, path: &DavPath, timeout: Duration) -> Result<Lock, DavError> {
        self.purge();
        let lock = self.locks.iter_mut().find(|l| l.token == token && l.covers(path));
        let lock = lock.ok_or_else(|| {
            DavError::new(412, format!("no lock {token:?} on {:?} to refresh", path.key()))
                .with_condition("<D:lock-token-matches-request-uri/>")
        })?;
        lock.timeout = timeout;
        lock.expires = Instant::now() + timeout;
        Ok(lock.clone())
    }

    /// Removes the lock with `token`, which must cover `path` (409 otherwise).
    pub fn unlock(&mut self, token: &str, path: &DavPath) -> Result<(), DavError> {
        self.purge();
        let before = self.locks.len();
        self.locks.retain(|l| !(l.token == token && l.covers(path)));
        if self.locks.len() == before {
            return Err(DavError::conflict(format!("no lock {token:?} covers {:?}", path.key()))
                .with_condition("<D:lock-token-matches-request-uri/>"));
        }
        Ok(())
    }

    /// Drops every lock rooted at or below `path` (after DELETE, or at a MOVE source).
    pub fn remove_subtree(&mut self, path: &DavPath) {
        self.locks.retain(|l| !l.root.starts_with(path));
    }

    /// Checks that a write may touch `path` (and, with `subtree`, every member below it) given the submitted
    /// tokens: every lock involved must be matched by a token (for shared locks, any shared token of the set).
    pub fn check_write(&mut self, path: &DavPath, subtree: bool, tokens: &[String]) -> Result<(), DavError> {
        self.purge();
        let involved: Vec<&Lock> =
            self.locks.iter().filter(|l| l.covers(path) || (subtree && l.root.starts_with(path))).collect();
        let shared_ok = involved.iter().any(|l| !l.exclusive && tokens.contains(&l.token));
        for lock in &involved {
            if tokens.contains(&lock.token) || (!lock.exclusive && shared_ok) {
                continue;
            }
            return Err(DavError::new(423, format!("{:?} is locked", lock.root.key())).with_condition(format!(
                "<D:lock-token-submitted><D:href>{}</D:href></D:lock-token-submitted>",
                super::xml::escape(&lock.root.key())
            )));
        }
        Ok(())
    }
}

/// One condition of an `If` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// A lock state token (`<urn:uuid:…>`), possibly negated.
    Token { token: String, not: bool },
    /// An entity tag (`["etag"]`), possibly negated.
    ETag { etag: String, not: bool },
}

/// One parenthesised list of an `If` header, optionally tagged with the resource it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfList {
    /// The tagged resource URL, or `None` for the request URL.
    pub resource: Option<String>,
    /// All conditions must hold.
    pub conditions: Vec<Condition>,
}

/// Parses an `If` header (RFC 4918 §10.4) into its lists; 400 on a syntax error.
pub fn parse_if(header: &str) -> Result<Vec<IfList>, DavError> {
    let bad = || DavError::bad_request(format!("malformed If header: {header:?}"));
    let mut lists = Vec::new();
    let mut rest = header.trim();
    let mut tag: Option<String> = None;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('<') {
            let end = after.find('>').ok_or_else(bad)?;
            tag = Some(after[..end].to_string());
            rest = after[end + 1..].trim_start();
            continue;
        }
        let after = rest.strip_prefix('(').ok_or_else(bad)?;
        let end = after.find(')').ok_or_else(bad)?;
        let mut inner = after[..end].trim();
        let mut conditions = Vec::new();
        while !inner.is_empty() {
            let mut not = false;
            if inner.len() >= 3 && inner[..3].eq_ignore_ascii_case("not") {
                not = true;
                inner = inner[3..].trim_start();
            }
            if let Some(t) = inner.strip_prefix('<') {
                let close = t.find('>').ok_or_else(bad)?;
                conditions.push(Condition::Token { token: t[..close].to_string(), not });
                inner = t[close + 1..].trim_start();
            } else if let Some(t) = inner.strip_prefix('[') {
                let close = t.find(']').ok_or_else(bad)?;
                conditions.push(Condition::ETag { etag: t[..close].to_string(), not });
                inner = t[close + 1..].trim_start();
            } else {
                return Err(bad());
            }
        }
        if conditions.is_empty() {
            return Err(bad());
        }
        lists.push(IfList { resource: tag.clone(), conditions });
        rest = after[end + 1..].trim_start();
    }
    if lists.is_empty() {
        return Err(bad());
    }
    Ok(lists)
}

/// Every lock token an `If` header mentions without `Not` (the tokens it submits).
pub fn submitted_tokens(lists: &[IfList]) -> Vec<String> {
    lists
        .iter()
        .flat_map(|l| &l.conditions)
        .filter_map(|c| match c {
            Condition::Token { token, not: false } => Some(token.clone()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> DavPath {
        DavPath::parse(s).unwrap()
    }

    #[test]
    fn exclusive_locks_conflict_and_tokens_unlock_writes() {
        let mut t = LockTable::new();
        let a = t.lock(&p("/dir"), true, true, None, Duration::from_secs(60)).unwrap();
        assert!(a.token.starts_with("urn:uuid:"));
        assert_eq!(t.lock(&p("/dir/f"), false, false, None, Duration::from_secs(60)).unwrap_err().status, 423);
        assert_eq!(t.lock(&p("/"), true, true, None, Duration::from_secs(60)).unwrap_err().status, 423);
        assert!(t.lock(&p("/other"), false, true, None, Duration::from_secs(60)).is_ok());
        assert_eq!(t.check_write(&p("/dir/f"), false, &[]).unwrap_err().status, 423);
        assert!(t.check_write(&p("/dir/f"), false, std::slice::from_ref(&a.token)).is_ok());
        assert_eq!(t.check_write(&p("/"), true, &[]).unwrap_err().status, 423);
        assert!(t.check_write(&p("/elsewhere"), false, &[]).is_ok());
        assert!(t.unlock(&a.token, &p("/dir/f")).is_ok());
        assert!(t.check_write(&p("/dir/f"), false, &[]).is_ok());
        assert_eq!(t.unlock(&a.token, &p("/dir")).unwrap_err().status, 409);
    }

    #[test]
    fn shared_locks_coexist_and_any_shared_token_writes() {
        let mut t = LockTable::new();
        let a = t.lock(&p("/f"), false, false, None, Duration::from_secs(60)).unwrap();
        let _b = t.lock(&p("/f"), false, false, None, Duration::from_secs(60)).unwrap();
        assert_eq!(t.lock(&p("/f"), false, true, None, Duration::from_secs(60)).unwrap_err().status, 423);
        assert!(t.check_write(&p("/f"), false, &[a.token]).is_ok());
    }

    #[test]
    fn expired_locks_vanish_and_the_table_is_bounded() {
        let mut t = LockTable::new();
        let a = t.lock(&p("/f"), false, true, None, Duration::from_secs(60)).unwrap();
        t.locks[0].expires = Instant::now() - Duration::from_secs(1);
        assert!(t.find(&a.token).is_none());
        for i in 0..MAX_WEBDAV_LOCKS {
            t.lock(&p(&format!("/f{i}")), false, true, None, Duration::from_secs(60)).unwrap();
        }
        assert_eq!(t.lock(&p("/one-more"), false, true, None, Duration::from_secs(60)).unwrap_err().status, 503);
    }

    #[test]
    fn if_headers_parse_tagged_and_untagged_lists() {
        let lists = parse_if("(<urn:uuid:1> [\"e1\"]) (Not <DAV:no-lock>)").unwrap();
        assert_eq!(lists.len(), 2);
        assert_eq!(submitted_tokens(&lists), ["urn:uuid:1"]);
        let tagged = parse_if("<http://h/fs/a> (<urn:uuid:2>) <http://h/fs/b> ([W/\"x\"])").unwrap();
        assert_eq!(tagged[0].resource.as_deref(), Some("http://h/fs/a"));
        assert_eq!(tagged[1].conditions, [Condition::ETag { etag: "W/\"x\"".into(), not: false }]);
        for bad in ["", "urn:uuid:1", "(<urn:uuid:1>", "()", "(junk)"] {
            assert!(parse_if(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timeouts_are_bounded() {
        assert_eq!(parse_timeout(None), WEBDAV_LOCK_DEFAULT_TIMEOUT);
        assert_eq!(parse_timeout(Some("Second-30")), Duration::from_secs(30));
        assert_eq!(parse_timeout(Some("Infinite, Second-4100000000")), WEBDAV_LOCK_MAX_TIMEOUT);
        assert_eq!(parse_timeout(Some("Second-99999999")), WEBDAV_LOCK_MAX_TIMEOUT);
        assert_eq!(parse_timeout(Some("garbage")), WEBDAV_LOCK_DEFAULT_TIMEOUT);
    }
}
