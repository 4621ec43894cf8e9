//! The daemon's command line, as a shell sees it: what is printed where,
//! and the exit status.

use std::process::{Command, Output};

use discoveryd::cli::{HELP, USAGE};

fn daemon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cohort-discoveryd")).args(args).output().expect("run cohort-discoveryd")
}

#[test]
fn help_prints_the_usage_and_exits_0() {
    for flag in ["--help", "-h"] {
        let out = daemon(&["--once", flag]);
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), HELP, "{flag}");
        assert!(out.stderr.is_empty(), "{flag}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn a_bad_command_line_says_why_with_the_usage_and_exits_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["--bogus"], "invalid option '--bogus'"),
        (&["--rescan", "0"], "--rescan needs a whole number of seconds > 0, not `0`"),
        (&["--once", "--socket"], "missing argument for option '--socket'"),
    ];
    for (args, why) in cases {
        let out = daemon(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), format!("cohort-discoveryd: {why}\n{USAGE}\n"), "{args:?}");
    }
}

#[test]
fn a_policy_broken_at_start_is_an_error_with_its_line_and_exits_2() {
    let path = std::env::temp_dir().join(format!("cohort-cli-policy-{}", std::process::id()));
    std::fs::write(&path, "name a lab\nname a other\n").unwrap();
    let p = path.to_str().unwrap();
    let out = daemon(&["--policy", p, "--socket", "/nonexistent/socket", "--once"]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("cohort-discoveryd: policy {p}: line 2: listed already on line 1\n")
    );
    let missing = daemon(&["--policy", "/nonexistent/groups", "--once"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).starts_with("cohort-discoveryd: policy /nonexistent/groups: No such file"));
}
