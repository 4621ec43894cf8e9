//! The command line: `cohort-discoveryd [--socket PATH] [--policy PATH]
//! [--rescan SECONDS] [--once] [--clock virtual|wall]`, or `-h`/`--help`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::run::Options;
use figures::Clock;

pub const USAGE: &str =
    "usage: cohort-discoveryd [--socket PATH] [--policy PATH] [--rescan SECONDS] [--once] [--clock virtual|wall]";

/// What `--help` prints.
pub const HELP: &str = "\
cohort-discoveryd: publishes, for each Cohort guest, the co-resident guests
of its group in xenstore (dom0, as root).

usage: cohort-discoveryd [--socket PATH] [--policy PATH] [--rescan SECONDS] [--once] [--clock virtual|wall]

  --socket PATH      xenstored's socket (default: $XENSTORED_PATH, else
                     /var/run/xenstored/socket)
  --policy PATH      dom0 decides the groups: lines `name NAME GROUP` or
                     `uuid UUID GROUP` (e.g. /etc/cohort/groups), read at
                     every scan; a guest not listed, or advertising another
                     group, gets no peers. Without it, a guest's group is
                     whatever its advert claims
  --rescan SECONDS   scan at least this often, events or not (default: 10)
  --once             scan once, print how long the scan took (a BENCH line:
                     discoveryd.scan, path domains-N, N the domains it
                     looked at, in us), then exit
  --clock CLOCK      what that line says the clock counted: wall (default)
                     or virtual (a lab under QEMU's -icount)
  -h, --help         print this and exit
";

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Run { socket: PathBuf, policy: Option<PathBuf>, opts: Options, clock: Clock },
    Help,
}

#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    #[error("--rescan needs a whole number of seconds > 0, not `{0}`")]
    BadRescan(String),
    #[error("--clock is virtual or wall, not `{0}`")]
    BadClock(String),
    /// An unknown option, a stray argument, an option without its value
    /// or a flag with one.
    #[error(transparent)]
    Syntax(#[from] lexopt::Error),
}

/// Parses the arguments after the program's name. `default_socket` is
/// used unless `--socket` is given.
pub fn parse(args: impl IntoIterator<Item = OsString>, default_socket: PathBuf) -> Result<Command, ArgsError> {
    use lexopt::prelude::*;

    let mut socket = default_socket;
    let mut policy = None;
    let mut opts = Options::default();
    let mut clock = Clock::default();
    let mut parser = lexopt::Parser::from_args(args);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("socket") => socket = parser.value()?.into(),
            Long("policy") => policy = Some(parser.value()?.into()),
            Long("rescan") => {
                let value = parser.value()?.to_string_lossy().into_owned();
                match value.parse::<u64>() {
                    Ok(seconds) if seconds > 0 => opts.rescan = Duration::from_secs(seconds),
                    _ => return Err(ArgsError::BadRescan(value)),
                }
            }
            Long("once") => opts.once = true,
            Long("clock") => {
                let value = parser.value()?.to_string_lossy().into_owned();
                clock = Clock::parse(&value).ok_or(ArgsError::BadClock(value))?;
            }
            Short('h') | Long("help") => return Ok(Command::Help),
            _ => return Err(arg.unexpected().into()),
        }
    }
    Ok(Command::Run { socket, policy, opts, clock })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Command, ArgsError> {
        parse(args.iter().map(OsString::from), PathBuf::from("/default/socket"))
    }

    fn run(socket: &str, rescan: u64, once: bool) -> Command {
        Command::Run {
            socket: socket.into(),
            policy: None,
            opts: Options { rescan: Duration::from_secs(rescan), once, ..Options::default() },
            clock: Clock::Wall,
        }
    }

    #[test]
    fn defaults() {
        assert_eq!(parse_strs(&[]).unwrap(), run("/default/socket", 10, false));
        assert_eq!(Options::default().rescan, Duration::from_secs(10));
    }

    #[test]
    fn every_option() {
        let want = run("/run/xs", 3, true);
        assert_eq!(parse_strs(&["--socket", "/run/xs", "--rescan", "3", "--once"]).unwrap(), want);
        assert_eq!(parse_strs(&["--once", "--rescan=3", "--socket=/run/xs"]).unwrap(), want);
        // The last one given counts.
        assert_eq!(
            parse_strs(&["--rescan", "5", "--rescan", "3", "--socket", "/x", "--socket", "/run/xs", "--once"]).unwrap(),
            want
        );
        // A path may look like anything, even an option.
        assert_eq!(parse_strs(&["--socket", "--once"]).unwrap(), run("--once", 10, false));
    }

    #[test]
    fn policy() {
        let with = |path: &str| match run("/default/socket", 10, false) {
            Command::Run { socket, opts, clock, .. } => Command::Run { socket, policy: Some(path.into()), opts, clock },
            help => help,
        };
        assert_eq!(parse_strs(&["--policy", "/etc/cohort/groups"]).unwrap(), with("/etc/cohort/groups"));
        assert_eq!(parse_strs(&["--policy=/a", "--policy", "/b"]).unwrap(), with("/b"));
    }

    #[test]
    fn clock() {
        let with = |clock| match run("/default/socket", 10, true) {
            Command::Run { socket, policy, opts, .. } => Command::Run { socket, policy, opts, clock },
            help => help,
        };
        assert_eq!(parse_strs(&["--once", "--clock", "virtual"]).unwrap(), with(Clock::Virtual));
        assert_eq!(parse_strs(&["--clock=virtual", "--clock", "wall", "--once"]).unwrap(), with(Clock::Wall));
    }

    #[test]
    fn help_wins_over_what_follows() {
        for args in [&["-h"][..], &["--help"], &["--once", "--help", "--bogus"], &["--socket", "/x", "-h"]] {
            assert_eq!(parse_strs(args).unwrap(), Command::Help, "{args:?}");
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let cases: &[(&[&str], &str)] = &[
            (&["--socket"], "missing argument for option '--socket'"),
            (&["--policy"], "missing argument for option '--policy'"),
            (&["--rescan"], "missing argument for option '--rescan'"),
            (&["--rescan", "0"], "--rescan needs a whole number of seconds > 0, not `0`"),
            (&["--rescan", "-1"], "--rescan needs a whole number of seconds > 0, not `-1`"),
            (&["--rescan", "1.5"], "--rescan needs a whole number of seconds > 0, not `1.5`"),
            (&["--rescan="], "--rescan needs a whole number of seconds > 0, not ``"),
            (&["--bogus"], "invalid option '--bogus'"),
            (&["-x"], "invalid option '-x'"),
            (&["extra"], "unexpected argument \"extra\""),
            (&["--once=yes"], "unexpected argument for option '--once': \"yes\""),
            (&["--clock"], "missing argument for option '--clock'"),
            (&["--clock", "tsc"], "--clock is virtual or wall, not `tsc`"),
        ];
        for (args, message) in cases {
            let e = parse_strs(args).expect_err(&format!("{args:?}"));
            assert_eq!(e.to_string(), *message, "{args:?}");
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn help_shows_the_usage_line() {
        assert!(HELP.contains(USAGE));
        for option in ["--socket PATH", "--policy PATH", "--rescan SECONDS", "--once", "--clock CLOCK", "-h, --help"] {
            assert!(HELP.contains(option), "{option}");
        }
    }
}
