//! Global flags anywhere on the command line, as in kubectl, gh or docker.
//!
//! argh accepts a flag only on the command that declares it, so `rstream webtty list --context lab` would be
//! refused with "Unrecognized argument: --context". [`hoist_global_flags`] lets argh itself say which global flag
//! sits where a flag is expected, moves it (with its value) to the front, where the top-level command declares it,
//! and lets argh parse again. argh stays the only judge of what is a flag, so nothing that is not one is touched:
//! the value of another option (`--filter -v`), everything after `--` and the arguments of a greedy command
//! (`webtty exec --url X -- echo -v`), and a subcommand's own flag of the same name (`codex setup --config`,
//! `mcp serve --context`).

use argh::FromArgs;

/// A flag of the top-level command that may appear anywhere.
#[derive(Clone, Copy, Debug)]
pub struct GlobalFlag {
    /// As typed: `--context`, `-v`.
    pub spelling: &'static str,
    /// Whether the next argument is its value.
    pub takes_value: bool,
}

/// `args` with every global flag argh refuses further right moved to the front (see the module doc). Arguments
/// argh would refuse for another reason, or a global flag missing its value, are left for argh to report.
pub fn hoist_global_flags<T: FromArgs>(command: &[&str], mut args: Vec<String>, globals: &[GlobalFlag]) -> Vec<String> {
    // Each round moves one flag in front of the command, so there are at most as many rounds as arguments.
    for _ in 0..args.len() {
        let Some((at, flag)) = misplaced_global::<T>(command, &args, globals) else { break };
        let len = if flag.takes_value { 2 } else { 1 };
        if at + len > args.len() {
            break;
        }
        let moved: Vec<String> = args.drain(at..at + len).collect();
        args.splice(0..0, moved);
    }
    args
}

/// The first global flag argh finds where the selected command does not declare it, and its index.
fn misplaced_global<T: FromArgs>(
    command: &[&str],
    args: &[String],
    globals: &[GlobalFlag],
) -> Option<(usize, GlobalFlag)> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let refusal = |args: &[&str]| T::from_args(command, args).err().filter(|e| e.status.is_err()).map(|e| e.output);
    let refused = refusal(&args)?;
    let name = refused.strip_prefix("Unrecognized argument: ")?.trim_end();
    let flag = *globals.iter().find(|g| g.spelling == name)?;
    // argh stops at the first refusal: the shortest prefix refused the same way ends with the misplaced flag.
    let at = (0..args.len()).find(|&i| args[i] == name && refusal(&args[..=i]).as_ref() == Some(&refused))?;
    Some((at, flag))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A miniature of the real tree: globals on top, a command with its own `--config`, a greedy one.
    #[derive(FromArgs, Debug)]
    /// top
    struct Top {
        /// config
        #[argh(option)]
        config: Option<String>,
        /// verbose
        #[argh(switch, short = 'v')]
        verbose: bool,
        #[argh(subcommand)]
        sub: Sub,
    }

    #[derive(FromArgs, Debug)]
    #[argh(subcommand)]
    enum Sub {
        List(List),
        Setup(Setup),
        Exec(Exec),
    }

    /// list
    #[derive(FromArgs, Debug)]
    #[argh(subcommand, name = "list")]
    struct List {
        /// filter
        #[argh(option)]
        filter: Option<String>,
    }

    /// setup with its own --config
    #[derive(FromArgs, Debug)]
    #[argh(subcommand, name = "setup")]
    struct Setup {
        /// the other program's config
        #[argh(option)]
        config: Option<String>,
    }

    /// exec
    #[derive(FromArgs, Debug)]
    #[argh(subcommand, name = "exec")]
    struct Exec {
        /// url
        #[argh(option)]
        url: Option<String>,
        /// command
        #[argh(positional, greedy)]
        command: Vec<String>,
    }

    const GLOBALS: &[GlobalFlag] =
        &[GlobalFlag { spelling: "--config", takes_value: true }, GlobalFlag { spelling: "-v", takes_value: false }];

    fn hoist(line: &str) -> String {
        let args = line.split_whitespace().map(str::to_owned).collect();
        hoist_global_flags::<Top>(&["top"], args, GLOBALS).join(" ")
    }

    #[test]
    fn globals_after_the_command_move_to_the_front() {
        assert_eq!(hoist("list --config c.yaml"), "--config c.yaml list");
        assert_eq!(hoist("list -v --filter x --config c"), "--config c -v list --filter x");
        assert_eq!(hoist("-v list"), "-v list");
    }

    #[test]
    fn values_remote_commands_and_a_commands_own_flags_are_left_alone() {
        assert_eq!(hoist("list --filter -v"), "list --filter -v");
        assert_eq!(hoist("exec --url u -- echo -v --config x"), "exec --url u -- echo -v --config x");
        assert_eq!(hoist("exec --url u echo -v"), "exec --url u echo -v");
        assert_eq!(hoist("exec -v --url u -- echo -v"), "-v exec --url u -- echo -v");
        assert_eq!(hoist("setup --config codex.toml"), "setup --config codex.toml");
        assert_eq!(hoist("list --filter --config --config c"), "--config c list --filter --config");
    }

    /// The hoisted line, parsed.
    fn parse(line: &str) -> Top {
        let args = hoist(line);
        let args: Vec<&str> = args.split_whitespace().collect();
        Top::from_args(&["top"], &args).unwrap()
    }

    #[test]
    fn each_flag_lands_where_argh_says_it_belongs() {
        let top = parse("list --filter x -v");
        assert!(top.verbose && top.config.is_none());
        assert!(matches!(top.sub, Sub::List(List { filter: Some(ref f) }) if f == "x"));
        let top = parse("setup --config codex.toml");
        assert!(top.config.is_none());
        assert!(matches!(top.sub, Sub::Setup(Setup { config: Some(ref c) }) if c == "codex.toml"));
        let top = parse("exec --url u --config c -- echo -v");
        assert_eq!((top.config.as_deref(), top.verbose), (Some("c"), false));
        let Sub::Exec(exec) = top.sub else { panic!("exec expected") };
        assert_eq!((exec.url.as_deref(), exec.command), (Some("u"), vec!["echo".to_owned(), "-v".to_owned()]));
    }

    #[test]
    fn other_errors_are_left_for_argh_to_report() {
        assert_eq!(hoist("list --config"), "list --config");
        assert_eq!(hoist("list --bogus -v"), "list --bogus -v");
        assert_eq!(hoist("list --help -v"), "list --help -v");
    }
}
