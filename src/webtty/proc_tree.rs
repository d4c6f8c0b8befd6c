//! The process tree as `/proc` shows it (Linux; empty elsewhere): who is whose parent, and which processes are
//! zombies. A session's processes are the descendants of its supervisor ([`ProcessTable::descendants`]); the
//! processes a killed supervisor left behind are children of the server ([`ProcessTable::children`]).
//!
//! A snapshot is a moment: a process may fork or exit right after it. Callers that kill from a snapshot
//! therefore repeat until a fresh snapshot shows nothing left.

use std::collections::HashMap;

/// One process: its pid, its parent's pid, and whether it already exited (a zombie waiting to be reaped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcEntry {
    /// Process id.
    pub pid: i32,
    /// Parent process id (after re-parenting, the subreaper or init).
    pub ppid: i32,
    /// Process group id.
    pub pgrp: i32,
    /// Session id.
    pub session: i32,
    /// Exited, not yet reaped.
    pub zombie: bool,
}

/// Every process visible in `/proc` at one moment.
#[derive(Clone, Debug, Default)]
pub struct ProcessTable {
    entries: Vec<ProcEntry>,
}

impl ProcessTable {
    /// Reads `/proc` now (an empty table where there is none).
    pub fn read() -> ProcessTable {
        let Ok(dir) = std::fs::read_dir("/proc") else { return ProcessTable::default() };
        let entries = dir
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter_map(read_entry)
            .collect();
        ProcessTable { entries }
    }

    /// A table of the given entries (for tests).
    pub fn from_entries(entries: Vec<ProcEntry>) -> ProcessTable {
        ProcessTable { entries }
    }

    /// The children of `parent`, zombies included.
    pub fn children(&self, parent: i32) -> impl Iterator<Item = &ProcEntry> + '_ {
        self.entries.iter().filter(move |e| e.ppid == parent)
    }

    /// Every descendant of `root` (children, their children, …; not `root` itself), zombies included.
    pub fn descendants(&self, root: i32) -> Vec<ProcEntry> {
        let mut by_parent: HashMap<i32, Vec<&ProcEntry>> = HashMap::new();
        for entry in &self.entries {
            by_parent.entry(entry.ppid).or_default().push(entry);
        }
        let mut found = Vec::new();
        let mut pending = vec![root];
        while let Some(parent) = pending.pop() {
            for child in by_parent.get(&parent).into_iter().flatten() {
                // pid 0 and self-parented entries cannot occur in /proc; skipping them keeps the walk finite.
                if child.pid != parent && child.pid > 0 {
                    found.push(**child);
                    pending.push(child.pid);
                }
            }
        }
        found
    }

    /// Pids of the live (not zombie) processes in session `sid`.
    pub fn session_members(&self, sid: i32) -> Vec<i32> {
        self.entries.iter().filter(|e| e.session == sid && !e.zombie).map(|e| e.pid).collect()
    }
}

/// Pids of the live processes in session `sid` right now (the session leader included while it lives).
pub fn session_members(sid: i32) -> Vec<i32> {
    ProcessTable::read().session_members(sid)
}

/// Parses `/proc/<pid>/stat`: "pid (comm) state ppid pgrp session …". `comm` may hold spaces and parentheses,
/// so the fields are split after the last `)`.
fn read_entry(pid: i32) -> Option<ProcEntry> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &stat)
}

fn parse_stat(pid: i32, stat: &str) -> Option<ProcEntry> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    Some(ProcEntry { pid, ppid, pgrp, session, zombie: state == "Z" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: i32, ppid: i32) -> ProcEntry {
        ProcEntry { pid, ppid, pgrp: pid, session: pid, zombie: false }
    }

    #[test]
    fn stat_lines_with_hostile_comm_parse() {
        let e = parse_stat(42, "42 (a) b (c) Z 7 8 9 0 0").unwrap();
        assert_eq!(e, ProcEntry { pid: 42, ppid: 7, pgrp: 8, session: 9, zombie: true });
        assert!(parse_stat(1, "1 (init").is_none());
    }

    #[test]
    fn descendants_follow_the_whole_subtree_and_nothing_else() {
        let table = ProcessTable::from_entries(vec![
            entry(10, 1),
            entry(11, 10),
            entry(12, 11),
            entry(13, 12),
            entry(20, 1),
            entry(21, 20),
        ]);
        let mut pids: Vec<i32> = table.descendants(10).iter().map(|e| e.pid).collect();
        pids.sort_unstable();
        assert_eq!(pids, [11, 12, 13]);
        assert_eq!(table.children(1).count(), 2);
        assert!(table.descendants(13).is_empty());
    }

    #[test]
    fn this_process_is_in_the_live_table() {
        let me = std::process::id() as i32;
        let table = ProcessTable::read();
        assert!(table.entries.iter().any(|e| e.pid == me && !e.zombie));
    }
}
