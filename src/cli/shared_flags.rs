//! Flags a command group shares with all of its verbs, accepted before **or** after the verb:
//! `rstream webtty fs --url rstrm://pi ls /` and `rstream webtty fs ls --url rstrm://pi /` mean the same.
//!
//! argh cannot flatten one flag struct into many verbs, and it hands everything after a verb's name to the verb.
//! [`SharedFlags`] wraps the group's derived parser instead: before argh runs, the group's own flags found after
//! the verb are moved in front of it, the verb's positionals go behind a `--` (so a lone `-`, "stdout", stays a
//! positional), and a verb's `--help` lists the group's flags among its options. The group and its verbs derive
//! `ArgsInfo`, which is where the flag names and arities come from: nothing is listed twice.

use argh::{
    ArgsInfo, CommandInfo, EarlyExit, FlagInfo, FlagInfoKind, FromArgs, Optionality, SubCommand, SubCommandInfo,
};

/// The words that ask argh for help (its defaults).
const HELP_TRIGGERS: [&str; 2] = ["--help", "help"];

/// A command group `T` (its flags plus one verb subcommand) whose flags may also follow the verb.
pub struct SharedFlags<T>(pub T);

impl<T: FromArgs + ArgsInfo> FromArgs for SharedFlags<T> {
    fn from_args(command_name: &[&str], args: &[&str]) -> Result<Self, EarlyExit> {
        let info = T::get_args_info();
        let (ordered, verb) = reorder(info.flags, &info.commands, args)?;
        match T::from_args(command_name, &ordered) {
            Err(EarlyExit { output, status: Ok(()) }) if verb.is_some() => {
                let group_help = T::from_args(command_name, &["--help"]).err().map(|e| e.output).unwrap_or_default();
                let output = with_required_in_usage(&with_group_options(&output, &group_help), info.flags);
                Err(EarlyExit { output, status: Ok(()) })
            }
            parsed => parsed.map(SharedFlags),
        }
    }
}

impl<T: SubCommand + ArgsInfo> SubCommand for SharedFlags<T> {
    const COMMAND: &'static CommandInfo = T::COMMAND;
}

/// How `arg` is used by `flags`: `Some(true)` an option taking a value, `Some(false)` a switch, `None` not theirs.
fn takes_value(flags: &[FlagInfo], arg: &str) -> Option<bool> {
    let short = |c: char| arg.len() == 1 + c.len_utf8() && arg.starts_with('-') && arg.ends_with(c);
    let flag = flags.iter().find(|f| f.long == arg || f.short.is_some_and(short))?;
    Some(matches!(flag.kind, FlagInfoKind::Option { .. }))
}

/// Reorders `args` into `GROUP_FLAGS… VERB VERB_FLAGS… -- POSITIONALS…` and names the verb found. Without a
/// recognisable verb, or for a verb with verbs of its own, the arguments are returned as given (argh then parses
/// or explains them as usual). A group option at the very end, without its value, is an error.
fn reorder<'a>(
    group: &[FlagInfo],
    verbs: &[SubCommandInfo],
    args: &[&'a str],
) -> Result<(Vec<&'a str>, Option<String>), EarlyExit> {
    let unchanged = Ok((args.to_vec(), None));
    let mut ordered = Vec::with_capacity(args.len() + 1);
    let mut rest = args.iter().copied();
    let verb = loop {
        let Some(arg) = rest.next() else { return unchanged };
        if let Some(verb) = verbs.iter().find(|v| v.name == arg) {
            break verb;
        }
        if HELP_TRIGGERS.contains(&arg) {
            ordered.push(arg);
            continue;
        }
        if !arg.starts_with('-') || arg == "-" || arg == "--" {
            return unchanged;
        }
        ordered.push(arg);
        if takes_value(group, arg) == Some(true) {
            ordered.extend(rest.next());
        }
    };
    if !verb.command.commands.is_empty() {
        return unchanged;
    }
    let own = verb.command.flags;
    let (mut flags, mut positionals) = (Vec::new(), Vec::new());
    while let Some(arg) = rest.next() {
        if arg == "--" {
            positionals.extend(rest.by_ref());
        } else if HELP_TRIGGERS.contains(&arg) {
            flags.push(arg);
        } else if let Some(value) = takes_value(group, arg) {
            ordered.push(arg);
            if value {
                let value = rest.next().ok_or_else(|| format!("No value provided for option '{arg}'."))?;
                ordered.push(value);
            }
        } else if let Some(value) = takes_value(own, arg) {
            flags.push(arg);
            if value {
                flags.extend(rest.next());
            }
        } else if arg.starts_with('-') && arg != "-" {
            flags.push(arg); // unknown: argh names it in its error
        } else {
            positionals.push(arg);
        }
    }
    ordered.push(verb.name);
    ordered.extend(flags);
    if !positionals.is_empty() {
        ordered.push("--");
        ordered.extend(positionals);
    }
    Ok((ordered, Some(verb.name.to_owned())))
}

/// The lines of the `Options:` block of an argh help text, without the help flag's own line.
fn options_block(help: &str) -> Vec<&str> {
    let block = help.lines().skip_while(|l| *l != "Options:").skip(1).take_while(|l| !l.is_empty());
    let mut in_help = false;
    block
        .filter(|line| {
            if line.starts_with("  -") {
                in_help = HELP_TRIGGERS.iter().any(|t| line.trim_start().starts_with(t));
            }
            !in_help
        })
        .collect()
}

/// `verb_help` with the group's options (from `group_help`) added to its `Options:` block, before `--help`.
fn with_group_options(verb_help: &str, group_help: &str) -> String {
    let group = options_block(group_help);
    if group.is_empty() {
        return verb_help.to_owned();
    }
    let mut out = String::with_capacity(verb_help.len() + group.iter().map(|l| l.len() + 1).sum::<usize>());
    let mut in_options = false;
    let mut added = false;
    for line in verb_help.lines() {
        in_options |= line == "Options:";
        let at_help = in_options && HELP_TRIGGERS.iter().any(|t| line.trim_start().starts_with(t));
        if at_help && !added {
            for g in &group {
                out.push_str(g);
                out.push('\n');
            }
            added = true;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !verb_help.ends_with('\n') {
        out.pop();
    }
    out
}

/// `help` with the group's required options (`--url <url>`) after the verb on its `Usage:` line.
fn with_required_in_usage(help: &str, group: &[FlagInfo]) -> String {
    let required: Vec<String> = group
        .iter()
        .filter(|f| f.optionality == Optionality::Required)
        .filter_map(|f| match f.kind {
            FlagInfoKind::Option { arg_name } => Some(format!("{} <{arg_name}>", f.long)),
            FlagInfoKind::Switch => None,
        })
        .collect();
    let Some((usage, rest)) = help.split_once('\n') else { return help.to_owned() };
    if required.is_empty() || !usage.starts_with("Usage: ") {
        return help.to_owned();
    }
    // "Usage: rstream webtty fs ls [--] [<path>]": the verb is the last word before the first flag or operand.
    let words: Vec<&str> = usage.split(' ').collect();
    let at = words.iter().skip(1).position(|w| w.starts_with(['[', '<', '-'])).map_or(words.len(), |i| i + 1);
    let line =
        [&words[..at], &required.iter().map(String::as_str).collect::<Vec<_>>(), &words[at..]].concat().join(" ");
    format!("{line}\n{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// a group
    #[derive(FromArgs, ArgsInfo, Debug, PartialEq)]
    #[argh(subcommand, name = "grp")]
    struct Group {
        /// where to go
        #[argh(option)]
        url: String,
        /// output format
        #[argh(option, short = 'o')]
        output: Option<String>,
        /// be careful
        #[argh(switch)]
        careful: bool,
        #[argh(subcommand)]
        verb: Verb,
    }

    #[derive(FromArgs, ArgsInfo, Debug, PartialEq)]
    #[argh(subcommand)]
    enum Verb {
        Copy(Copy),
    }

    /// copy a thing
    #[derive(FromArgs, ArgsInfo, Debug, PartialEq)]
    #[argh(subcommand, name = "copy", example = "grp copy --url u a b")]
    struct Copy {
        /// from
        #[argh(positional)]
        from: String,
        /// to
        #[argh(positional)]
        to: String,
        /// replace
        #[argh(switch)]
        force: bool,
    }

    fn parse(args: &[&str]) -> Result<Group, EarlyExit> {
        SharedFlags::<Group>::from_args(&["grp"], args).map(|g| g.0)
    }

    fn copy(url: &str, output: Option<&str>, careful: bool, from: &str, to: &str, force: bool) -> Group {
        let verb = Verb::Copy(Copy { from: from.into(), to: to.into(), force });
        Group { url: url.into(), output: output.map(Into::into), careful, verb }
    }

    #[test]
    fn group_flags_parse_before_and_after_the_verb() {
        let want = copy("u", Some("json"), true, "a", "b", false);
        for args in [
            &["--url", "u", "-o", "json", "--careful", "copy", "a", "b"][..],
            &["copy", "--url", "u", "a", "-o", "json", "b", "--careful"],
            &["-o", "json", "copy", "a", "b", "--url", "u", "--careful"],
            &["--careful", "copy", "a", "--output", "json", "--url", "u", "b"],
        ] {
            assert_eq!(parse(args).unwrap(), want, "{args:?}");
        }
    }

    #[test]
    fn a_lone_dash_is_a_positional_and_double_dash_ends_the_flags() {
        assert_eq!(parse(&["copy", "--url", "u", "a", "-"]).unwrap(), copy("u", None, false, "a", "-", false));
        assert_eq!(
            parse(&["copy", "--url", "u", "-", "--force", "b"]).unwrap(),
            copy("u", None, false, "-", "b", true)
        );
        let literal = parse(&["--url", "u", "copy", "--", "--url", "-o"]).unwrap();
        assert_eq!(literal, copy("u", None, false, "--url", "-o", false));
        let after = parse(&["copy", "a", "--url", "u", "--", "--"]).unwrap();
        assert_eq!(after, copy("u", None, false, "a", "--", false));
    }

    #[test]
    fn unknown_flags_and_missing_values_are_still_refused() {
        let err = parse(&["copy", "--url", "u", "--colour", "a", "b"]).err().unwrap();
        assert!(err.status.is_err() && err.output.contains("--colour"), "{}", err.output);
        let err = parse(&["copy", "a", "b", "--url"]).err().unwrap();
        assert!(err.status.is_err() && err.output.contains("--url"), "{}", err.output);
        assert!(parse(&["copy", "a", "b"]).is_err(), "--url is required");
        assert!(parse(&["cpy", "--url", "u", "a", "b"]).is_err());
    }

    #[test]
    fn verb_help_lists_the_group_options_before_its_own_help_line() {
        let help = parse(&["copy", "--help"]).err().unwrap();
        assert!(help.status.is_ok());
        let options: Vec<&str> = help.output.lines().skip_while(|l| *l != "Options:").collect();
        let at = |needle: &str| options.iter().position(|l| l.trim_start().starts_with(needle));
        let (force, url, out, careful, own_help) =
            (at("--force"), at("--url"), at("-o, --output"), at("--careful"), at("--help"));
        assert!(force < url && url < out && out < careful && careful < own_help, "{}", help.output);
        assert!(own_help.is_some() && help.output.contains("Examples:"), "{}", help.output);
        assert!(help.output.starts_with("Usage: grp copy --url <url> [--force] [--] <from> <to>\n"), "{}", help.output);
        assert_eq!(help.output.matches("--help").count(), 1, "{}", help.output);
        let before = parse(&["help", "copy"]).err().unwrap();
        assert_eq!(before.output, help.output);
        let group = parse(&["--help"]).err().unwrap();
        assert!(group.output.contains("copy") && group.output.contains("--url"), "{}", group.output);
    }
}
