//! Unit tests of [`super`]: the file's format and bounds, damaged files set aside, the debounced writer.

use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::engine::ids::random_hex;
use crate::engine::names::NameBook;

/// Deadline for the writer thread to catch up (it debounces for [`NAME_STORE_DEBOUNCE`]).
const CATCH_UP: Duration = Duration::from_secs(10);

fn temp_store(tag: &str) -> NameStore {
    let dir = std::env::temp_dir().join(format!("rstream-names-{tag}-{}", random_hex::<6>()));
    fs::create_dir_all(&dir).unwrap();
    NameStore::new(dir.join("tunnel-names"))
}

fn saved(name: &str, owner: &str) -> SavedName {
    SavedName { name: name.into(), owner: owner.into() }
}

fn remove(store: &NameStore) {
    let _ = fs::remove_dir_all(store.path.parent().unwrap());
}

/// Polls `probe` every 10 ms until it holds, or panics after [`CATCH_UP`] naming `what`.
fn wait_for(what: &str, probe: impl Fn() -> bool) {
    let end = Instant::now() + CATCH_UP;
    while !probe() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn saved_names_read_back_lowercased_and_a_missing_file_is_empty() {
    let store = temp_store("round");
    assert_eq!(store.load(), [], "no file yet");
    assert!(!store.bad_path().exists());
    let owner = "operator \"quoted\" ünïcode";
    store.write(&encode(&[saved("Shell", "device-a"), saved("lab", owner)]).0).unwrap();
    assert_eq!(store.load(), [saved("shell", "device-a"), saved("lab", owner)]);
    assert_eq!(fs::metadata(&store.path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(store.writes(), 1);
    remove(&store);
}

#[test]
fn a_damaged_file_is_moved_aside_and_gives_no_names() {
    let store = temp_store("bad");
    let too_many: Vec<String> =
        (0..=MAX_NAME_RESERVATIONS).map(|i| format!("{{\"name\":\"n{i}\",\"owner\":\"o\"}}")).collect();
    let cases = [
        ("malformed", "{\"version\":1,\"names\":[".to_owned()),
        ("version", "{\"version\":2,\"names\":[]}".to_owned()),
        ("unknown field", "{\"version\":1,\"names\":[],\"extra\":0}".to_owned()),
        ("invalid name", "{\"version\":1,\"names\":[{\"name\":\"a b\",\"owner\":\"o\"}]}".to_owned()),
        ("id-shaped", "{\"version\":1,\"names\":[{\"name\":\"0123456789abcdef\",\"owner\":\"o\"}]}".to_owned()),
        ("empty owner", "{\"version\":1,\"names\":[{\"name\":\"a\",\"owner\":\"\"}]}".to_owned()),
        (
            "listed twice",
            "{\"version\":1,\"names\":[{\"name\":\"a\",\"owner\":\"o\"},{\"name\":\"A\",\"owner\":\"p\"}]}".to_owned(),
        ),
        ("too many", format!("{{\"version\":1,\"names\":[{}]}}", too_many.join(","))),
        ("oversize", format!("{{\"version\":1,\"names\":[]}}{}", " ".repeat(MAX_NAME_STORE_LEN as usize))),
    ];
    for (what, content) in cases {
        fs::write(&store.path, &content).unwrap();
        assert_eq!(store.load(), [], "{what}");
        assert!(!store.path.exists(), "{what}: the damaged file is still in place");
        assert_eq!(fs::read_to_string(store.bad_path()).unwrap(), content, "{what}: no .bad copy");
    }
    remove(&store);
}

#[test]
fn encoding_stays_within_its_bounds_keeping_the_first_names() {
    let names: Vec<SavedName> = (0..MAX_NAME_RESERVATIONS + 5).map(|i| saved(&format!("n{i}"), "o")).collect();
    let (bytes, left_out) = encode(&names);
    assert_eq!(left_out, 5);
    assert!(bytes.len() as u64 <= MAX_NAME_STORE_LEN);
    let huge = "s".repeat(MAX_JWT_LEN);
    let names: Vec<SavedName> = (0..1000).map(|i| saved(&format!("n{i}"), &huge)).collect();
    let (bytes, left_out) = encode(&names);
    assert!(left_out > 0 && bytes.len() as u64 <= MAX_NAME_STORE_LEN, "{left_out} left out, {} bytes", bytes.len());
    let store = temp_store("bounds");
    store.write(&bytes).unwrap();
    let read = store.load();
    assert_eq!(read.len(), 1000 - left_out);
    assert_eq!(read[0], names[0], "the first names are the ones kept");
    remove(&store);
}

#[test]
fn a_burst_of_changes_costs_one_write() {
    let store = temp_store("burst");
    let book = Arc::new(Mutex::new(NameBook::new(Duration::from_secs(60))));
    let (changes, changed) = std::sync::mpsc::sync_channel(1);
    book.lock().unwrap().report_changes(changes);
    let held = Arc::clone(&book);
    store.clone().spawn_writer(HeldNames::default(), changed, move |now| Some(held.lock().unwrap().held(now)));
    for i in 0..50 {
        book.lock().unwrap().bind(&format!("dev{i}"), &format!("sub{i}"), &format!("t{i}"));
    }
    let all_on_disk = || store.load().len() == 50;
    wait_for("the 50 bindings on disk", all_on_disk);
    assert_eq!(store.writes(), 1, "one write for the burst");
    assert!(store.load().contains(&saved("dev7", "sub7")));
    remove(&store);
}

#[test]
fn restored_reservations_leave_the_file_when_they_expire() {
    let store = temp_store("expiry");
    store.write(&encode(&[saved("shell", "device-a"), saved("lab", "device-b")]).0).unwrap();
    let grace = Duration::from_millis(300);
    let book = Arc::new(Mutex::new(NameBook::new(grace)));
    let start = Instant::now();
    assert_eq!(book.lock().unwrap().restore(store.load(), start), 2);
    let (changes, changed) = std::sync::mpsc::sync_channel(1);
    book.lock().unwrap().report_changes(changes);
    let on_disk = book.lock().unwrap().held(start);
    let held = Arc::clone(&book);
    store.clone().spawn_writer(on_disk, changed, move |now| Some(held.lock().unwrap().held(now)));
    book.lock().unwrap().bind("lab", "device-b", "t1");
    wait_for("the expired reservation to leave the file", || store.load() == [saved("lab", "device-b")]);
    assert!(start.elapsed() >= grace, "dropped before the grace ended");
    drop(book);
    remove(&store);
}
