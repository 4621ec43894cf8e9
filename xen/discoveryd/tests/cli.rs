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

/// `--once` against a scripted xenstored holding dom0 and two guests that
/// do not advertise: the scan looks at both and says so on its BENCH line.
#[test]
fn once_prints_its_scan_as_a_bench_line() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixListener;
    use xenstore_wire::{Header, MsgType, HEADER_LEN};

    let dir = std::env::temp_dir().join(format!("cohort-cli-once-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("socket");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut h = [0u8; HEADER_LEN];
        // Until the daemon goes.
        while s.read_exact(&mut h).is_ok() {
            let h = Header::parse(&h).unwrap();
            let mut p = vec![0u8; h.payload_len()];
            s.read_exact(&mut p).unwrap();
            let (ty, reply): (MsgType, &[u8]) = match (h.msg_type, &p[..]) {
                (MsgType::Watch, _) => (MsgType::Watch, b"OK\0"),
                (MsgType::Directory, b"/local/domain\0") => (MsgType::Directory, b"0\x005\x006\0"),
                _ => (MsgType::Error, b"ENOENT\0"),
            };
            let reply_h = Header { msg_type: ty, req_id: h.req_id, tx_id: 0, len: reply.len() as u32 };
            s.write_all(&reply_h.to_bytes()).unwrap();
            s.write_all(reply).unwrap();
        }
    });
    let out = daemon(&["--socket", path.to_str().unwrap(), "--once", "--clock", "virtual"]);
    server.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let bench: Vec<&str> = stdout.lines().filter(|l| l.starts_with("BENCH ")).collect();
    assert_eq!(bench.len(), 1, "{stdout}");
    let line = bench[0];
    assert!(line.starts_with(r#"BENCH {"name":"discoveryd.scan","path":"domains-2","value":"#), "{line}");
    assert!(line.ends_with(r#","unit":"us","clock":"virtual"}"#), "{line}");
}
