//! Who owns each tunnel name, on disk: `<state>/tunnel-names`, so a restarted engine still knows.
//!
//! Without it, the first subject to register a name after a restart would own it — an attacker device that
//! reconnects faster than the owner would take the name, its published host and the operator's sessions. So:
//!
//! - **Start.** [`NameStore::load`] reads the file; the registry makes every saved binding a reservation for its
//!   owner through the grace period (`engine serve --name-grace`), counted from the engine's start
//!   ([`super::names::NameBook::restore`]): owners get their names back first, others get 409.
//! - **Changes.** Every change of a binding wakes the writer thread ([`NameStore::spawn_writer`]). It waits
//!   [`NAME_STORE_DEBOUNCE`] for the rest of a burst (a fleet reconnecting), then replaces the file atomically
//!   (mode 0600) — one write per burst, none when nothing changed — and wakes again when the earliest
//!   reservation expires, to drop it. A failed write is retried after [`NAME_STORE_RETRY`].
//! - **Bounds.** The file holds at most [`MAX_NAME_RESERVATIONS`] names and [`MAX_NAME_STORE_LEN`] bytes: the
//!   writer leaves out what would not fit (live names come first, then the reservations that last longest).
//! - **Damage.** A file that is malformed, oversize or names an invalid tunnel name is renamed to
//!   `tunnel-names.bad` (kept for inspection, never silently wiped) with a warning, and the engine starts
//!   without reservations.
//!
//! ```text
//! {"version":1,"names":[
//! {"name":"shell","owner":"device-a"},
//! {"name":"lab","owner":"operator"}
//! ]}
//! ```

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::names::HeldNames;
use super::registry::validate_name;
use super::state::{write_atomic, StateError};
use crate::limits::{MAX_JWT_LEN, MAX_NAME_RESERVATIONS, MAX_NAME_STORE_LEN, NAME_STORE_DEBOUNCE, NAME_STORE_RETRY};

/// Version of the file's format.
const FORMAT_VERSION: u32 = 1;
/// Suffix of the copy a damaged file is moved to.
const BAD_SUFFIX: &str = ".bad";

/// A tunnel name and the token subject that owns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedName {
    /// The name (lowercase).
    pub name: String,
    /// The owner's token subject (JWT `sub`).
    pub owner: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedFile {
    version: u32,
    names: Vec<SavedName>,
}

/// The owners file of one engine and how often it was written.
#[derive(Clone, Debug)]
pub struct NameStore {
    path: PathBuf,
    writes: Arc<AtomicU64>,
}

impl NameStore {
    /// The file at `path` (it need not exist).
    pub fn new(path: PathBuf) -> Self {
        NameStore { path, writes: Arc::default() }
    }

    /// Where a damaged file is moved: `<file>.bad`.
    pub fn bad_path(&self) -> PathBuf {
        let mut bad = self.path.clone().into_os_string();
        bad.push(BAD_SUFFIX);
        PathBuf::from(bad)
    }

    /// How many times this store replaced the file.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// The saved bindings; none when the file is missing. A damaged file is moved to [`NameStore::bad_path`]
    /// with a warning, and gives none.
    pub fn load(&self) -> Vec<SavedName> {
        let error = match read_saved(&self.path) {
            Ok(saved) => return saved,
            Err(e) => e,
        };
        let bad = self.bad_path();
        match fs::rename(&self.path, &bad) {
            Ok(()) => log_warn!(
                "{error}: moved it to {}; starting without reserved tunnel names (their owners get no head start \
                 after this restart)",
                bad.display()
            ),
            Err(e) => {
                log_warn!("{error}; cannot move it to {}: {e}; starting without reserved tunnel names", bad.display())
            }
        }
        Vec::new()
    }

    /// Replaces the file with `bytes` (atomically, mode 0600).
    pub fn write(&self, bytes: &[u8]) -> Result<(), StateError> {
        write_atomic(&self.path, bytes, 0o600)?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Keeps the file in step with `held(now)` (the bindings that hold now; `None` once the engine is gone) from a
    /// thread of its own, woken by a signal on `changes` after each change (see the module docs). `on_disk` is
    /// what the file says already (what was just loaded): nothing is written until that changes. The thread ends
    /// when every sender of `changes` is gone.
    pub fn spawn_writer<F>(self, on_disk: HeldNames, changes: Receiver<()>, held: F)
    where
        F: FnMut(Instant) -> Option<HeldNames> + Send + 'static,
    {
        let path = self.path.clone();
        let spawned =
            std::thread::Builder::new().name("tunnel-names".into()).spawn(move || self.run(on_disk, changes, held));
        if let Err(e) = spawned {
            log_warn!("cannot start the writer of {}: {e}; tunnel names are not kept across restarts", path.display());
        }
    }

    fn run(self, on_disk: HeldNames, changes: Receiver<()>, mut held: impl FnMut(Instant) -> Option<HeldNames>) {
        let mut written = Some(encode(&on_disk.names).0);
        let mut wake = on_disk.next_expiry;
        let mut left_out = 0;
        loop {
            let signal = match wake {
                Some(at) => changes.recv_timeout(at.saturating_duration_since(Instant::now())),
                None => changes.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match signal {
                Ok(()) => {
                    // Let the rest of a burst arrive: it costs one write.
                    std::thread::sleep(NAME_STORE_DEBOUNCE);
                    while changes.try_recv().is_ok() {}
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            let Some(now) = held(Instant::now()) else { return };
            wake = now.next_expiry;
            let (bytes, omitted) = encode(&now.names);
            if omitted != left_out && omitted > 0 {
                log_warn!(
                    "{}: {omitted} tunnel name(s) left out (at most {MAX_NAME_RESERVATIONS} names, \
                     {MAX_NAME_STORE_LEN} bytes); they are not reserved after a restart",
                    self.path.display()
                );
            }
            left_out = omitted;
            if written.as_ref() == Some(&bytes) {
                continue;
            }
            match self.write(&bytes) {
                Ok(()) => written = Some(bytes),
                Err(e) => {
                    log_warn!("{e}; trying again in {} s", NAME_STORE_RETRY.as_secs());
                    written = None;
                    let retry = Instant::now() + NAME_STORE_RETRY;
                    wake = Some(wake.map_or(retry, |w| w.min(retry)));
                }
            }
        }
    }
}

/// The file's bytes for `names`, and how many of them were left out to stay within [`MAX_NAME_RESERVATIONS`]
/// names and [`MAX_NAME_STORE_LEN`] bytes (the first ones are kept).
pub fn encode(names: &[SavedName]) -> (Vec<u8>, usize) {
    const HEAD: &[u8] = b"{\"version\":1,\"names\":[\n";
    const TAIL: &[u8] = b"\n]}\n";
    let mut out = HEAD.to_vec();
    let mut kept = 0;
    for saved in names.iter().take(MAX_NAME_RESERVATIONS) {
        let entry = serde_json::to_vec(saved).expect("strings serialize");
        let separator = usize::from(kept > 0);
        if (out.len() + separator + entry.len() + TAIL.len()) as u64 > MAX_NAME_STORE_LEN {
            break;
        }
        if kept > 0 {
            out.push(b',');
            out.push(b'\n');
        }
        out.extend_from_slice(&entry);
        kept += 1;
    }
    out.extend_from_slice(TAIL);
    (out, names.len() - kept)
}

/// Reads and checks the file at `path` (none when it is missing).
fn read_saved(path: &Path) -> Result<Vec<SavedName>, StateError> {
    let shown = path.display();
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StateError(format!("cannot read tunnel name owners {shown}: {e}"))),
    };
    let mut bytes = Vec::new();
    file.take(MAX_NAME_STORE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| StateError(format!("cannot read tunnel name owners {shown}: {e}")))?;
    if bytes.len() as u64 > MAX_NAME_STORE_LEN {
        return Err(StateError(format!("tunnel name owners {shown} is larger than {MAX_NAME_STORE_LEN} bytes")));
    }
    let saved: SavedFile = serde_json::from_slice(&bytes)
        .map_err(|e| StateError(format!("tunnel name owners {shown} is malformed: {e}")))?;
    check(saved).map_err(|e| StateError(format!("tunnel name owners {shown} is malformed: {e}")))
}

/// The bindings of a parsed file, names lowercased, or what is wrong with it.
fn check(saved: SavedFile) -> Result<Vec<SavedName>, String> {
    if saved.version != FORMAT_VERSION {
        return Err(format!("version {} (this engine reads {FORMAT_VERSION})", saved.version));
    }
    if saved.names.len() > MAX_NAME_RESERVATIONS {
        return Err(format!("{} names (at most {MAX_NAME_RESERVATIONS})", saved.names.len()));
    }
    let mut seen = HashSet::new();
    let mut names = Vec::with_capacity(saved.names.len());
    for SavedName { name, owner } in saved.names {
        validate_name(&name).map_err(|e| e.to_string())?;
        if owner.is_empty() || owner.len() > MAX_JWT_LEN {
            return Err(format!("owner of {name:?} has {} bytes (1-{MAX_JWT_LEN})", owner.len()));
        }
        let name = name.to_ascii_lowercase();
        if !seen.insert(name.clone()) {
            return Err(format!("{name:?} is listed twice"));
        }
        names.push(SavedName { name, owner });
    }
    Ok(names)
}

#[cfg(test)]
#[path = "name_store_tests.rs"]
mod tests;
