//! `--help` that teaches, from the real binary: every command path — found by walking the binary's own help from
//! `rstream --help` down through each `Commands:` block, so a command added tomorrow is walked too — has an
//! `Examples:` section, at least one example runs that very command (or, for a group, one of its commands), and
//! every `--flag` an example uses is one the help of the command it runs lists (an example cannot go stale
//! silently).

#![cfg(all(feature = "device", feature = "operator", feature = "engine"))]

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::{TempDir, BIN};

/// The flags of the top-level command, valid after any command (see `rstream --help`).
const GLOBAL_FLAGS: [&str; 3] = ["--config", "--context", "--verbose"];

/// Fewer command paths than this means the walk itself broke (the tree has more than 35 today).
const MIN_COMMAND_PATHS: usize = 30;

/// `rstream PATH… --help`, which must succeed; run without any config around.
fn help(path: &[String], home: &TempDir) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(path).arg("--help").env("HOME", home.path());
    for k in ["RSTREAM_CONFIG", "RSTREAM_CONTEXT", "RSTREAM_ENGINE", "RSTREAM_AUTHENTICATION_TOKEN"] {
        cmd.env_remove(k);
    }
    let out = cmd.output().expect("run rstream --help");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "`rstream {} --help` failed: {text}{}",
        path.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The indented lines of the help section titled `title` (`Commands:`, `Examples:`), up to the next blank or
/// unindented line.
fn section<'a>(help: &'a str, title: &str) -> Vec<&'a str> {
    help.lines().skip_while(|l| *l != title).skip(1).take_while(|l| l.starts_with("  ")).collect()
}

/// The subcommand names a `Commands:` block lists (its continuation lines are indented further).
fn subcommands(help: &str) -> Vec<String> {
    section(help, "Commands:")
        .iter()
        .filter(|l| l.as_bytes().get(2).is_some_and(u8::is_ascii_lowercase))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Every command path below (and including) `path`, depth first.
fn walk(path: Vec<String>, home: &TempDir, found: &mut Vec<(Vec<String>, String)>) {
    let text = help(&path, home);
    let subs = subcommands(&text);
    found.push((path.clone(), text));
    for sub in subs {
        let mut next = path.clone();
        next.push(sub);
        walk(next, home, found);
    }
}

/// What an example runs: the command path (the longest one `known` has) and the `--flags` it passes — the words
/// after `rstream`, up to a pipe, a comment or `--`.
fn example_invocation<'a>(example: &'a str, known: &HashMap<String, String>) -> Option<(String, Vec<&'a str>)> {
    let (_, line) = example.split_once("rstream ")?;
    let words: Vec<&str> = line.split(['|', '#']).next()?.split_whitespace().take_while(|w| *w != "--").collect();
    let mut path = String::new();
    for word in &words {
        let longer = if path.is_empty() { (*word).to_owned() } else { format!("{path} {word}") };
        if !known.contains_key(&longer) {
            break;
        }
        path = longer;
    }
    Some((path, words.into_iter().filter(|w| w.starts_with("--")).collect()))
}

#[test]
fn every_command_has_an_example_that_runs_it_with_flags_it_has() {
    let home = TempDir::new("help");
    let mut commands = Vec::new();
    walk(Vec::new(), &home, &mut commands);
    assert!(commands.len() >= MIN_COMMAND_PATHS, "only {} command paths found: the walk is broken", commands.len());
    let known: HashMap<String, String> = commands.iter().map(|(p, text)| (p.join(" "), text.clone())).collect();
    let mut problems = Vec::new();
    for (path, text) in &commands {
        let path = path.join(" ");
        let examples = section(text, "Examples:");
        if examples.is_empty() {
            problems.push(format!("`rstream {path} --help` has no Examples: section"));
            continue;
        }
        let runs: Vec<_> = examples.iter().filter_map(|e| Some((*e, example_invocation(e, &known)?))).collect();
        let runs_it = |ran: &String| path.is_empty() || *ran == path || ran.starts_with(&format!("{path} "));
        if !runs.iter().any(|(_, (ran, _))| runs_it(ran)) {
            problems.push(format!("no example of `rstream {path} --help` runs `rstream {path}`: {examples:?}"));
        }
        for (example, (ran, flags)) in &runs {
            let ran_help = &known[ran];
            for flag in flags {
                // A flag line is `  --flag …` or, with a short form, `  -f, --flag …`.
                let lists = |l: &str| {
                    let l = l.trim_start();
                    l.starts_with(flag)
                        || l.split_once(", ").is_some_and(|(short, long)| short.len() == 2 && long.starts_with(flag))
                };
                let listed = GLOBAL_FLAGS.contains(flag) || ran_help.lines().any(lists);
                if !listed {
                    problems.push(format!("example {example:?}: `rstream {ran} --help` lists no {flag}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn the_walk_reaches_leaves_of_every_depth() {
    let home = TempDir::new("help-walk");
    let mut commands = Vec::new();
    walk(Vec::new(), &home, &mut commands);
    let paths: Vec<String> = commands.iter().map(|(p, _)| p.join(" ")).collect();
    for expected in ["", "context use", "context delete", "webtty fs mv", "engine token revoke", "mcp serve"] {
        assert!(paths.iter().any(|p| p == expected), "`rstream {expected}` not reached; walked: {paths:?}");
    }
}
