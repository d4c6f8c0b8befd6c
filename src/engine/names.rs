//! Who owns a tunnel name: the token subject (JWT `sub`) that registered it.
//!
//! A name — and with it the published host `<name>.t.<host>` — is bound to its owner's subject while the tunnel
//! is live, and stays reserved for that subject for a grace period after the tunnel's control channel drops
//! (`engine serve --name-grace`, default [`NAME_GRACE_DEFAULT`]), so a device that reboots or loses its link gets
//! its name back and nobody else can step into the operator's sessions meanwhile. A name is released at once when
//! its owner closes the tunnel itself or it is evicted through the REST API (by its owner or an admin).
//!
//! Names are case-insensitive (kept lowercase here; they are DNS labels). A name never has the shape of a tunnel
//! id ([`super::ids::is_id_shaped`]), so ids and names always resolve unambiguously. At most
//! [`MAX_NAME_RESERVATIONS`] names are held in reserve; beyond it a dropped tunnel's name is freed at once.
//!
//! The bindings outlive the engine: [`NameBook::held`] is what [`super::name_store`] saves after every change,
//! and [`NameBook::restore`] turns what it saved into reservations when the engine starts again, so an owner
//! gets its name back after a restart before a device that happens to reconnect faster.

use std::collections::HashMap;
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use super::name_store::SavedName;
use crate::limits::{MAX_NAME_RESERVATIONS, NAME_GRACE_DEFAULT};
use crate::proto::rstream::{Error as ProtoError, ErrorCode};

/// Where an owned name stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Binding {
    /// Registered: the tunnel id it resolves to.
    Live(String),
    /// Its tunnel's control channel dropped; the owner may take it back until then.
    Reserved(Instant),
}

#[derive(Clone, Debug)]
struct Claim {
    owner: String,
    binding: Binding,
}

/// Every owned tunnel name of one engine, live or reserved.
#[derive(Debug)]
pub struct NameBook {
    claims: HashMap<String, Claim>,
    reserved: usize,
    grace: Duration,
    /// Told, without waiting, whenever a binding changes (see [`NameBook::report_changes`]).
    changes: Option<SyncSender<()>>,
}

/// What [`NameBook::held`] returns: the bindings to keep, and when the first reservation among them expires.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeldNames {
    /// Live names (by name), then reserved ones (the longest-lasting first).
    pub names: Vec<SavedName>,
    /// When the earliest reservation among them expires.
    pub next_expiry: Option<Instant>,
}

impl Default for NameBook {
    fn default() -> Self {
        NameBook::new(NAME_GRACE_DEFAULT)
    }
}

impl NameBook {
    /// An empty book keeping dropped names reserved for `grace`.
    pub fn new(grace: Duration) -> Self {
        NameBook { claims: HashMap::new(), reserved: 0, grace, changes: None }
    }

    /// Signals `changes` (a full channel means a signal is pending already) after every change of a binding.
    pub fn report_changes(&mut self, changes: SyncSender<()>) {
        self.changes = Some(changes);
    }

    fn changed(&self) {
        if let Some(changes) = &self.changes {
            let _ = changes.try_send(());
        }
    }

    /// Reserves each of `saved` (bindings kept from before a restart) for its owner until `now` plus the grace
    /// period; names already claimed are skipped, and at most [`MAX_NAME_RESERVATIONS`] are held. Returns how
    /// many were reserved.
    pub fn restore(&mut self, saved: Vec<SavedName>, now: Instant) -> usize {
        let mut restored = 0;
        for SavedName { name, owner } in saved {
            if self.reserved >= MAX_NAME_RESERVATIONS {
                log_warn!("{MAX_NAME_RESERVATIONS} tunnel names already reserved: {name:?} and later ones are free");
                break;
            }
            let key = name.to_ascii_lowercase();
            if self.claims.contains_key(&key) {
                continue;
            }
            self.claims.insert(key, Claim { owner, binding: Binding::Reserved(now + self.grace) });
            self.reserved += 1;
            restored += 1;
        }
        if restored > 0 {
            self.changed();
        }
        restored
    }

    /// The bindings that hold at `now` — live names, then unexpired reservations — each with its owner.
    pub fn held(&self, now: Instant) -> HeldNames {
        let mut live = Vec::new();
        let mut reserved = Vec::new();
        for (name, claim) in &self.claims {
            let saved = SavedName { name: name.clone(), owner: claim.owner.clone() };
            match claim.binding {
                Binding::Live(_) => live.push(saved),
                Binding::Reserved(until) if until > now => reserved.push((until, saved)),
                Binding::Reserved(_) => {}
            }
        }
        live.sort_by(|a, b| a.name.cmp(&b.name));
        reserved.sort_by(|(a_until, a), (b_until, b)| b_until.cmp(a_until).then_with(|| a.name.cmp(&b.name)));
        let next_expiry = reserved.iter().map(|(until, _)| *until).min();
        live.extend(reserved.into_iter().map(|(_, saved)| saved));
        HeldNames { names: live, next_expiry }
    }

    /// Whether subject `sub` may register `name` at `now`: 409 while another tunnel holds it, or while it is
    /// reserved for another subject.
    pub fn check(&self, name: &str, sub: &str, now: Instant) -> Result<(), ProtoError> {
        let Some(claim) = self.claims.get(&name.to_ascii_lowercase()) else { return Ok(()) };
        match claim.binding {
            Binding::Live(_) => Err(ProtoError::new(
                ErrorCode::InvalidRequest,
                format!("tunnel name {name:?} is already used by another tunnel"),
            )),
            Binding::Reserved(until) if until > now && claim.owner != sub => {
                let left = until.saturating_duration_since(now).as_secs().max(1);
                Err(ProtoError::new(
                    ErrorCode::InvalidRequest,
                    format!("tunnel name {name:?} is reserved for the subject that registered it (another {left} s)"),
                ))
            }
            Binding::Reserved(_) => Ok(()),
        }
    }

    /// Binds `name` to `sub` and its live tunnel `tunnel_id` (after [`NameBook::check`] passed).
    pub fn bind(&mut self, name: &str, sub: &str, tunnel_id: &str) {
        let claim = Claim { owner: sub.to_owned(), binding: Binding::Live(tunnel_id.to_owned()) };
        if let Some(old) = self.claims.insert(name.to_ascii_lowercase(), claim) {
            self.forget(&old);
        }
        self.changed();
    }

    /// The live tunnel id `name` resolves to.
    pub fn tunnel(&self, name: &str) -> Option<&str> {
        match &self.claims.get(&name.to_ascii_lowercase())?.binding {
            Binding::Live(id) => Some(id),
            Binding::Reserved(_) => None,
        }
    }

    /// Frees `name` if it is bound to `tunnel_id` (its owner closed it, or it was evicted).
    pub fn release(&mut self, name: &str, tunnel_id: &str) {
        let key = name.to_ascii_lowercase();
        if self.claims.get(&key).is_some_and(|c| c.binding == Binding::Live(tunnel_id.to_owned())) {
            self.claims.remove(&key);
            self.changed();
        }
    }

    /// Keeps `name`, bound to `tunnel_id` whose control channel dropped, reserved for its owner until `now` plus
    /// the grace period (freed at once when [`MAX_NAME_RESERVATIONS`] are held even after pruning).
    pub fn reserve(&mut self, name: &str, tunnel_id: &str, now: Instant) {
        let key = name.to_ascii_lowercase();
        if !self.claims.get(&key).is_some_and(|c| c.binding == Binding::Live(tunnel_id.to_owned())) {
            return;
        }
        if self.reserved >= MAX_NAME_RESERVATIONS {
            self.prune(now);
        }
        if self.reserved >= MAX_NAME_RESERVATIONS {
            log_warn!("{MAX_NAME_RESERVATIONS} tunnel names already reserved: {name:?} is freed at once");
            self.claims.remove(&key);
            self.changed();
            return;
        }
        if let Some(claim) = self.claims.get_mut(&key) {
            claim.binding = Binding::Reserved(now + self.grace);
            self.reserved += 1;
            self.changed();
        }
    }

    /// Names held in reserve (expired ones included until pruned).
    pub fn reserved(&self) -> usize {
        self.reserved
    }

    /// Drops the reservations that expired by `now`.
    fn prune(&mut self, now: Instant) {
        self.claims.retain(|_, c| !matches!(c.binding, Binding::Reserved(until) if until <= now));
        self.reserved = self.claims.values().filter(|c| matches!(c.binding, Binding::Reserved(_))).count();
    }

    fn forget(&mut self, old: &Claim) {
        if matches!(old.binding, Binding::Reserved(_)) {
            self.reserved -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(45);

    #[test]
    fn a_live_name_is_refused_to_everyone_else_case_insensitively() {
        let mut book = NameBook::new(GRACE);
        let now = Instant::now();
        book.bind("Shell", "pi", "t1");
        assert_eq!(book.tunnel("SHELL"), Some("t1"));
        assert!(book.check("shell", "intruder", now).unwrap_err().is(ErrorCode::InvalidRequest));
        assert!(book.check("shell", "pi", now).unwrap_err().is(ErrorCode::InvalidRequest), "one live tunnel per name");
        assert!(book.check("other", "intruder", now).is_ok());
    }

    #[test]
    fn a_dropped_name_is_kept_for_its_owner_until_the_grace_ends() {
        let mut book = NameBook::new(GRACE);
        let now = Instant::now();
        book.bind("shell", "pi", "t1");
        book.reserve("shell", "t1", now);
        assert_eq!((book.tunnel("shell"), book.reserved()), (None, 1));
        let refused = book.check("shell", "intruder", now + GRACE / 2).unwrap_err();
        assert!(refused.to_string().contains("reserved"), "{refused}");
        assert!(book.check("shell", "pi", now + GRACE / 2).is_ok(), "the owner comes back");
        assert!(book.check("shell", "intruder", now + GRACE).is_ok(), "free after the grace");
        book.bind("shell", "intruder", "t2");
        assert_eq!((book.tunnel("shell"), book.reserved()), (Some("t2"), 0));
    }

    #[test]
    fn release_and_reserve_only_touch_the_tunnel_bound_to_the_name() {
        let mut book = NameBook::new(GRACE);
        let now = Instant::now();
        book.bind("shell", "pi", "t1");
        book.release("shell", "stale");
        book.reserve("shell", "stale", now);
        assert_eq!(book.tunnel("shell"), Some("t1"));
        book.release("shell", "t1");
        assert!(book.check("shell", "anyone", now).is_ok(), "an explicit close frees the name");
        assert_eq!(book.tunnel("shell"), None);
    }

    #[test]
    fn reservations_are_capped_and_expired_ones_pruned_first() {
        let mut book = NameBook::new(GRACE);
        let now = Instant::now();
        for i in 0..MAX_NAME_RESERVATIONS {
            book.bind(&format!("n{i}"), "pi", &format!("t{i}"));
            book.reserve(&format!("n{i}"), &format!("t{i}"), now);
        }
        book.bind("late", "pi", "tl");
        book.reserve("late", "tl", now);
        assert!(book.check("late", "intruder", now).is_ok(), "over the cap: freed at once");
        book.bind("later", "pi", "tx");
        book.reserve("later", "tx", now + GRACE);
        assert_eq!(book.reserved(), 1, "the expired reservations were pruned");
        assert!(book.check("later", "intruder", now + GRACE).is_err());
    }

    #[test]
    fn restored_names_are_reserved_for_their_owners_from_the_restart() {
        let mut book = NameBook::new(GRACE);
        let start = Instant::now();
        let saved = |name: &str, owner: &str| SavedName { name: name.into(), owner: owner.into() };
        book.bind("live", "pi", "t0");
        let restored = book.restore(vec![saved("Shell", "device-a"), saved("live", "intruder")], start);
        assert_eq!((restored, book.reserved()), (1, 1), "a name already claimed is not restored");
        let refused = book.check("shell", "device-b", start + GRACE / 2).unwrap_err();
        assert!(refused.is(ErrorCode::InvalidRequest) && refused.to_string().contains("reserved"), "{refused}");
        assert!(book.check("shell", "device-a", start + GRACE / 2).is_ok(), "the owner gets it back");
        assert!(book.check("shell", "device-b", start + GRACE).is_ok(), "free after the grace");
    }

    #[test]
    fn held_names_list_live_ones_then_unexpired_reservations_and_signal_changes() {
        let (changes, changed) = std::sync::mpsc::sync_channel(1);
        let mut book = NameBook::new(GRACE);
        book.report_changes(changes);
        let now = Instant::now();
        book.bind("b", "pi", "t1");
        assert!(changed.try_recv().is_ok(), "a bind is a change");
        book.bind("a", "pi", "t2");
        book.reserve("a", "t2", now);
        book.restore(vec![SavedName { name: "old".into(), owner: "gone".into() }], now - GRACE / 2);
        let held = book.held(now);
        let names: Vec<(&str, &str)> = held.names.iter().map(|s| (s.name.as_str(), s.owner.as_str())).collect();
        assert_eq!(names, [("b", "pi"), ("a", "pi"), ("old", "gone")]);
        assert_eq!(held.next_expiry, Some(now + GRACE / 2));
        assert_eq!(book.held(now + GRACE / 2).names.len(), 2, "an expired reservation is not held");
        while changed.try_recv().is_ok() {}
        book.release("b", "t1");
        assert!(changed.try_recv().is_ok(), "a release is a change");
        book.release("b", "t1");
        assert!(changed.try_recv().is_err(), "releasing nothing is no change");
    }
}
