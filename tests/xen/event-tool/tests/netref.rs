//! netref (`tests/xen/linux-guest/netref.c`, the Linux reference guests'
//! tool), built with the host's C compiler and run over loopback, prints
//! `EVENT` lines that `cohort-event` reads the way the lab's scenarios ask
//! them: its listeners, the sink's answers (digest or count only), a
//! stream-check's outcome (matching, and not: a wrong digest, a hostile
//! answer, the right answer without its newline) and request/response,
//! and its cap on connections served at once.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cohort_event::{Answer, Query};

/// netref, compiled once for this test binary (warnings are errors).
fn netref() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../linux-guest/netref.c");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("netref");
        let cc = Command::new("cc").args(["-O2", "-Wall", "-Werror", "-o"]).arg(&out).arg(&src).output().expect("cc");
        assert!(cc.status.success(), "cc {}: {}", src.display(), String::from_utf8_lossy(&cc.stderr));
        out
    })
}

fn run(args: &[&str]) -> Output {
    Command::new(netref()).args(args).output().expect("netref")
}

/// What `cohort-event - KIND ARGS...` answers for `text`.
fn answer(text: &str, query: &str) -> Answer {
    let args = std::iter::once("-").chain(query.split_whitespace()).map(Into::into);
    let q = Query::parse(args).expect(query).expect(query);
    let answer = q.run(text);
    assert!(answer.unreadable.is_empty(), "{query}: {:?}", answer.unreadable);
    assert_eq!(answer.no_such_field, None, "{query}");
    answer
}

/// Its lines.
fn ask(text: &str, query: &str) -> Vec<String> {
    answer(text, query).lines
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `netref serve` on two free ports, its output gathered as it comes.
struct Serve {
    child: Child,
    lines: Receiver<String>,
    text: String,
    sink: u16,
    echo: u16,
}

impl Serve {
    fn start() -> Serve {
        let (sink, echo) = (free_port(), free_port());
        let mut child = Command::new(netref())
            .args(["serve", &sink.to_string(), &echo.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("netref serve");
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || out.lines().map_while(Result::ok).try_for_each(|l| tx.send(l)));
        let mut serve = Serve { child, lines, text: String::new(), sink, echo };
        serve.wait_for(&format!("listening service=echo port={echo}"));
        assert_eq!(ask(&serve.text, "listening service=sink --get port"), [sink.to_string()]);
        serve
    }

    /// Reads the output until `query` has an answer; its last line.
    fn wait_for(&mut self, query: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = answer(&self.text, query);
            if found.found {
                return found.lines.last().cloned().unwrap_or_default();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.text += &(line + "\n"),
                Err(e) => panic!("netref serve: no `{query}` ({e}); it printed:\n{}", self.text),
            }
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // The sink, netref's child, follows it (PR_SET_PDEATHSIG).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One stream into a sink: `data`, then its answer.
fn stream_into(port: u16, data: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(data).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
}

/// A sink that answers each stream with `answer`, whatever it got.
fn fake_sink(answer: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().map_while(Result::ok) {
            let _ = std::io::copy(&mut s, &mut std::io::sink());
            let _ = s.write_all(answer);
        }
    });
    port
}

fn stream_check(port: u16, bytes: u64) -> (bool, String) {
    let out = run(&["stream-check", "127.0.0.1", &port.to_string(), &bytes.to_string()]);
    // The human line quotes the answer as it came (cohort-event reads a
    // console log lossily too).
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What the first MiB of Cohort's pattern hashes to (netref's selftest).
const PATTERN_MIB_SHA256: &str = "f29fb072131fcfc725b5ec446ad19960b2b1b4fd78a3cbf5867009111fe602e0";

#[test]
fn the_sink_and_a_stream_check_agree_in_events() {
    let mut serve = Serve::start();
    // An odd size: the pattern's last word is cut.
    let (ok, out) = stream_check(serve.sink, 1_048_579);
    assert!(ok, "{out}");
    let q = "stream path=netfront bytes=1048579 check=sha256 sink_bytes=1048579 match=true frames=null";
    assert_eq!(ask(&out, q).len(), 1, "{out}");
    let sent = ask(&out, "stream --get sent_digest").pop().unwrap();
    assert_eq!(ask(&out, "stream --get sink_digest"), [sent.as_str()]);
    assert_eq!(serve.wait_for("sink bytes=1048579 check=sha256 --get digest"), sent);

    let (ok, out) = stream_check(serve.sink, 1 << 20);
    assert!(ok, "{out}");
    assert_eq!(ask(&out, "stream match=true --get sent_digest"), [PATTERN_MIB_SHA256]);
    assert_eq!(serve.wait_for(&format!("sink bytes=1048576 digest={PATTERN_MIB_SHA256} --count")), "1");

    // Count only: the magic is not counted, and no digest.
    let mut data = b"cohort-n".to_vec();
    data.extend([7u8; 1000]);
    assert_eq!(stream_into(serve.sink, &data), "1000 -\n");
    assert_eq!(serve.wait_for("sink check=count digest=null --get bytes"), "1000");
    assert_eq!(ask(&serve.text, "sink --count"), ["3"]);
}

#[test]
fn request_response_is_an_rr_event_beside_its_figures() {
    let serve = Serve::start();
    let out = run(&["rr", "127.0.0.1", &serve.echo.to_string(), "40", "1", "linux-to-linux-netfront", "wall"]);
    assert!(out.status.success());
    let out = String::from_utf8(out.stdout).unwrap();
    assert_eq!(ask(&out, "rr path=linux-to-linux-netfront transactions=40 frames=null").len(), 1, "{out}");
    let get = |f: &str| ask(&out, &format!("rr --get {f}")).pop().unwrap().parse::<f64>().unwrap();
    assert!(get("per_second") > 0.0 && get("seconds") > 0.0 && get("mean_us") > 0.0, "{out}");
    assert!(get("p50_us") <= get("p99_us"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("BENCH {\"name\":\"net.tcp_rr\"")), "{out}");
}

#[test]
fn the_sink_and_the_echo_serve_connections_at_once() {
    // app=mix holds several flows to one server: the second must be served
    // while the first stays open.
    let mut serve = Serve::start();
    let timeout = Some(Duration::from_secs(10));
    let (mut a, mut b) =
        (TcpStream::connect(("127.0.0.1", serve.echo)).unwrap(), TcpStream::connect(("127.0.0.1", serve.echo)).unwrap());
    for s in [&a, &b] {
        s.set_read_timeout(timeout).unwrap();
    }
    let mut byte = [0u8; 1];
    b.write_all(b"b").unwrap();
    b.read_exact(&mut byte).unwrap();
    assert_eq!(&byte, b"b");
    a.write_all(b"a").unwrap();
    a.read_exact(&mut byte).unwrap();
    assert_eq!(&byte, b"a");
    // A sink stream held open while another one is answered.
    let mut held = TcpStream::connect(("127.0.0.1", serve.sink)).unwrap();
    held.write_all(b"cohort-n0123").unwrap();
    assert_eq!(stream_into(serve.sink, b"cohort-nxy"), "2 -\n");
    held.shutdown(Shutdown::Write).unwrap();
    let mut answer = String::new();
    held.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "4 -\n");
    assert_eq!(serve.wait_for("sink bytes=4 check=count --count"), "1");
}

#[test]
fn the_echo_serves_at_most_32_connections_at_once() {
    // Each connection is a child process: a client may not make the server
    // hold more. The 33rd waits in the backlog until one of them ends.
    let mut serve = Serve::start();
    let timeout = Some(Duration::from_secs(10));
    let open = |serve: &Serve| {
        let s = TcpStream::connect(("127.0.0.1", serve.echo)).unwrap();
        s.set_read_timeout(timeout).unwrap();
        s
    };
    let mut byte = [0u8; 1];
    let mut held: Vec<TcpStream> = (0..32).map(|_| open(&serve)).collect();
    for s in &mut held {
        s.write_all(b"h").unwrap();
        s.read_exact(&mut byte).unwrap();
    }
    assert_eq!(serve.wait_for("busy service=echo --get connections"), "32");
    let mut waiting = open(&serve);
    waiting.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    waiting.write_all(b"w").unwrap();
    let early = waiting.read(&mut byte);
    assert!(early.is_err(), "served beyond the cap: {early:?}");
    drop(held.pop());
    waiting.set_read_timeout(timeout).unwrap();
    waiting.read_exact(&mut byte).unwrap();
    assert_eq!(&byte, b"w");
}

#[test]
fn answers_that_do_not_match_are_events_too() {
    // A wrong digest: the count matches, the digest does not.
    let zeros: &'static str = "0000000000000000000000000000000000000000000000000000000000000000";
    let wrong = fake_sink(format!("1048576 {zeros}\n").leak().as_bytes());
    let (ok, out) = stream_check(wrong, 1 << 20);
    assert!(!ok, "{out}");
    assert_eq!(ask(&out, &format!("stream match=false sink_bytes=1048576 sink_digest={zeros} --count")), ["1"], "{out}");

    // The right answer without its newline is no answer.
    let cut = fake_sink(format!("1048576 {PATTERN_MIB_SHA256}").leak().as_bytes());
    let (ok, out) = stream_check(cut, 1 << 20);
    assert!(!ok, "{out}");
    assert_eq!(ask(&out, &format!("stream match=false sink_digest={PATTERN_MIB_SHA256} --count")), ["1"], "{out}");

    // A hostile answer: quotes, backslashes, control and high bytes stay
    // inside one line of JSON; a count that is not a number is 0.
    let hostile = fake_sink(b"12x \"q\"\\\x01\xff tail\n");
    let (ok, out) = stream_check(hostile, 64);
    assert!(!ok, "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("EVENT ")).count(), 1, "{out}");
    assert_eq!(ask(&out, "stream match=false sink_bytes=0 --get sink_digest"), ["\"q\"\\\u{1}\u{ff}"], "{out}");
}
