//! Processes that outlive their session supervisor. Every session runs under a supervisor that is a child
//! subreaper ([`super::process`]), so nothing a session starts can leave its subtree — unless the supervisor
//! itself is killed (a command can `kill -9 $PPID`). Then its subtree is re-parented to the next subreaper up:
//! the server, when it [adopts](Orphanage::adopt) orphans, instead of init, where nobody would end it.
//!
//! Any child of an adopting server that is not the supervisor of a running session is such a stray: it belongs
//! to a session whose supervisor died, and that session is over (the death of the supervisor ends it). A
//! [sweep](Orphanage::sweep) kills every stray with its descendants and reaps them; sessions that still have
//! their supervisor are never touched, because their processes are not children of the server.
//!
//! A server that lets processes detach ([`Orphanage::with_detach`]) also keeps the supervisors that linger for
//! them: those are never strays.
//!
//! Adoption is opt-in and process-wide (`PR_SET_CHILD_SUBREAPER`): only a process that starts children solely
//! through [`super::process::SessionProcess`] may adopt, or a sweep would end children it does not know.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use async_io::Timer;

use super::proc_tree::ProcessTable;
use super::sys;
use crate::limits;

/// Whether this server adopts orphans, and the supervisors of its running sessions; whether it lets processes
/// detach, and the supervisors lingering for them.
#[derive(Clone, Debug, Default)]
pub struct Orphanage {
    adopted: Option<Arc<Mutex<Vec<i32>>>>,
    lingering: Option<Arc<Mutex<Vec<i32>>>>,
}

fn lock(list: &Option<Arc<Mutex<Vec<i32>>>>) -> Option<MutexGuard<'_, Vec<i32>>> {
    list.as_ref().map(|m| m.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
}

impl Orphanage {
    /// No adoption: orphans of a killed supervisor go to init. For library use and tests.
    pub fn none() -> Orphanage {
        Orphanage::default()
    }

    /// Makes this process a child subreaper (Linux) and returns the orphanage that sweeps what it adopts.
    pub fn adopt() -> io::Result<Orphanage> {
        sys::become_child_subreaper()?;
        Ok(Orphanage { adopted: Some(Arc::default()), lingering: None })
    }

    /// The same orphanage, letting processes detach (`webtty server --allow-detach`, off by default): a
    /// process that left its command's session (`setsid`) survives the end of its WebTTY session. Everything
    /// still in the command's session is ended as always; the session's supervisor then lingers, reaping the
    /// detached processes as they exit, and sweeps never touch its subtree. At most
    /// [`limits::WEBTTY_MAX_LINGERING_SESSIONS`] sessions linger at once; beyond that a session ends whole.
    pub fn with_detach(mut self) -> Orphanage {
        self.lingering = Some(Arc::default());
        self
    }

    /// Whether processes may detach from their session.
    pub fn allows_detach(&self) -> bool {
        self.lingering.is_some()
    }

    /// Whether orphans are adopted (and swept).
    pub fn is_adopting(&self) -> bool {
        self.adopted.is_some()
    }

    fn supervisors(&self) -> Option<MutexGuard<'_, Vec<i32>>> {
        lock(&self.adopted)
    }

    /// Keeps the supervisor `pid` (its command's session is over, detached processes remain) as lingering.
    /// `false` when detaching is off or [`limits::WEBTTY_MAX_LINGERING_SESSIONS`] already linger.
    pub(crate) fn linger(&self, pid: i32) -> bool {
        let Some(mut lingering) = lock(&self.lingering) else { return false };
        let me = std::process::id() as i32;
        let table = ProcessTable::read();
        lingering.retain(|p| table.children(me).any(|e| e.pid == *p && !e.zombie));
        if lingering.len() >= limits::WEBTTY_MAX_LINGERING_SESSIONS {
            return false;
        }
        lingering.push(pid);
        true
    }

    /// Whether `pid` is a lingering supervisor.
    fn is_lingering(&self, pid: i32) -> bool {
        lock(&self.lingering).is_some_and(|l| l.contains(&pid))
    }

    /// Runs `spawn`, which starts a supervisor and returns it with its pid, and records the pid — with the
    /// registry locked throughout, so a concurrent sweep never takes the newborn supervisor for a stray.
    pub(crate) fn register<T, E>(&self, spawn: impl FnOnce() -> Result<(T, i32), E>) -> Result<T, E> {
        let mut supervisors = self.supervisors();
        let (spawned, pid) = spawn()?;
        if let Some(list) = supervisors.as_mut() {
            list.push(pid);
        }
        Ok(spawned)
    }

    /// Forgets a supervisor (its session ended).
    pub(crate) fn release(&self, pid: i32) {
        if let Some(mut list) = self.supervisors() {
            list.retain(|&p| p != pid);
        }
    }

    /// One pass: SIGKILL every stray and its descendants, reap the strays that already exited. Returns whether
    /// no stray was found (nothing left to do). Does not wait.
    pub(crate) fn sweep_once(&self) -> bool {
        let Some(supervisors) = self.supervisors() else { return true };
        let me = std::process::id() as i32;
        let table = ProcessTable::read();
        let mut clean = true;
        for stray in table.children(me).filter(|e| !supervisors.contains(&e.pid) && !self.is_lingering(e.pid)) {
            clean = false;
            if stray.zombie {
                sys::reap_if_exited(stray.pid);
                continue;
            }
            log_debug!("webtty server: ending pid {} left behind by a killed session supervisor", stray.pid);
            for below in table.descendants(stray.pid).iter().filter(|e| !e.zombie) {
                let _ = sys::signal_process(below.pid, libc::SIGKILL);
            }
            let _ = sys::signal_process(stray.pid, libc::SIGKILL);
        }
        clean
    }

    /// Sweeps until no stray is left (each pass kills and reaps; the descendants of a killed stray become strays
    /// themselves), for at most [`limits::WEBTTY_KILL_DEADLINE`].
    pub(crate) async fn sweep(&self) {
        let deadline = Instant::now() + limits::WEBTTY_KILL_DEADLINE;
        while !self.sweep_once() && Instant::now() < deadline {
            Timer::after(limits::WEBTTY_KILL_POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_adopting_orphanage_never_sweeps_and_registers_nothing() {
        let orphans = Orphanage::none();
        assert!(!orphans.is_adopting());
        let spawned: Result<u8, ()> = orphans.register(|| Ok((7, 12345)));
        assert_eq!(spawned, Ok(7));
        orphans.release(12345);
        assert!(orphans.sweep_once());
    }
}
