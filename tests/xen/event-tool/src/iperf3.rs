//! `cohort-event --iperf3 FILE [TAG] [--udp] [--reverse] [--bidir]
//! [--streams N] [--error TEXT] [--get FIELD]`: what a Xen scenario asks of a stock
//! iperf3 client's `-J` report, read with serde_json (dom0 has no jq).
//!
//! * `FILE` is the report itself (`iperf3 -c ... -J > FILE`; `-`: standard
//!   input), or, with `TAG`, a console log in which a Linux reference guest
//!   printed `IPERF3 TAG ` followed by the report (one line or iperf3's own
//!   lines; the last such report counts).
//! * Without `--error`, the report must be of a test that ran as asked
//!   (`--udp`, `--reverse`, `--bidir`, `--streams N`, default TCP, one
//!   stream, client sends) and report the bytes both ends counted ([`check_test`]).
//! * With `--error TEXT`, the report must be of a test iperf3 refused with
//!   exactly that message (its `error` field).
//! * `--get FIELD` (dotted, e.g. `end.sum_received.bits_per_second`)
//!   prints that field once the checks passed.
//!
//! Prints a one-line summary (or the field) and exits 0 when the checks
//! pass; prints why and exits 1 when not (also when the report is missing
//! or is not JSON); exits 2 for a usage error.

use std::ffi::OsString;

use serde_json::Value;

pub const USAGE: &str =
    "usage: cohort-event --iperf3 FILE [TAG] [--udp] [--reverse] [--bidir] [--streams N] [--error TEXT] [--get FIELD]";

/// One invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub file: String,
    pub tag: Option<String>,
    pub udp: bool,
    pub reverse: bool,
    /// `--bidir`: N streams each way.
    pub bidir: bool,
    pub streams: u64,
    pub error: Option<String>,
    pub get: Option<String>,
}

impl Check {
    /// The arguments after `--iperf3`.
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Check, String> {
        use lexopt::prelude::*;
        let mut parser = lexopt::Parser::from_args(args);
        let mut positional = Vec::new();
        let mut check = Check {
            file: String::new(),
            tag: None,
            udp: false,
            reverse: false,
            bidir: false,
            streams: 1,
            error: None,
            get: None,
        };
        let text = |p: &mut lexopt::Parser| -> Result<String, String> {
            p.value().map_err(|e| e.to_string())?.string().map_err(|e| e.to_string())
        };
        while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
            match arg {
                Long("udp") => check.udp = true,
                Long("reverse") => check.reverse = true,
                Long("bidir") => check.bidir = true,
                Long("streams") => {
                    let n = text(&mut parser)?;
                    check.streams = n.parse().ok().filter(|n| *n > 0).ok_or(format!("--streams {n}: not a count"))?;
                }
                Long("error") => check.error = Some(text(&mut parser)?),
                Long("get") => check.get = Some(text(&mut parser)?),
                Value(v) => positional.push(v.string().map_err(|e| e.to_string())?),
                other => return Err(other.unexpected().to_string()),
            }
        }
        let mut positional = positional.into_iter();
        check.file = positional.next().ok_or("no FILE")?;
        check.tag = positional.next();
        if let Some(extra) = positional.next() {
            return Err(format!("`{extra}`: one FILE and one TAG at most"));
        }
        Ok(check)
    }

    /// The summary line (or `--get`'s field) if the report passes.
    pub fn run(&self, text: &str) -> Result<String, String> {
        let report = match &self.tag {
            Some(tag) => tagged_report(text, tag)?,
            None => serde_json::from_str(text).map_err(|e| format!("not an iperf3 -J report: {e}"))?,
        };
        let summary = match &self.error {
            Some(expected) => check_refused(&report, expected)?,
            None => check_test(&report, self)?,
        };
        match &self.get {
            None => Ok(summary),
            Some(name) => match field(&report, name) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(v) => Ok(v.to_string()),
                None => Err(format!("the report has no `{name}`")),
            },
        }
    }
}

/// The last report a console log gives after `IPERF3 TAG `.
pub fn tagged_report(text: &str, tag: &str) -> Result<Value, String> {
    let marker = format!("IPERF3 {tag} ");
    let at = text.rfind(&marker).ok_or_else(|| format!("no `{}` in the log", marker.trim_end()))?;
    let rest = &text[at + marker.len()..];
    match serde_json::Deserializer::from_str(rest).into_iter::<Value>().next() {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(format!("the report after `{}` is not JSON: {e}", marker.trim_end())),
        None => Err(format!("nothing after `{}`", marker.trim_end())),
    }
}

fn field<'v>(object: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(object, |v, key| v.as_object()?.get(key))
}

fn number(report: &Value, path: &str) -> Result<f64, String> {
    field(report, path).and_then(Value::as_f64).ok_or_else(|| format!("the report has no number `{path}`"))
}

fn count(report: &Value, path: &str) -> Result<u64, String> {
    let n = number(report, path)?;
    if n < 0.0 || n.fract() != 0.0 {
        return Err(format!("`{path}` is {n}, not a count"));
    }
    Ok(n as u64)
}

/// A refused test: iperf3's `error` is exactly `expected`, and no data
/// was counted.
pub fn check_refused(report: &Value, expected: &str) -> Result<String, String> {
    let got = report.get("error").and_then(Value::as_str).ok_or("the report has no `error`: the test was not refused")?;
    if got != expected {
        return Err(format!("iperf3's error is `{got}`, expected `{expected}`"));
    }
    if let Some(sent) = field(report, "end.sum_sent.bytes").and_then(Value::as_f64).filter(|b| *b > 0.0) {
        return Err(format!("refused, yet {sent} bytes were sent"));
    }
    Ok(format!("refused: {got}"))
}

/// A test that ran as asked and whose ends agree: no `error`;
/// `start.test_start` says the protocol, stream count and direction asked
/// for; `end.sum_sent` and `end.sum_received` both count bytes (> 0) over
/// a time (> 0); the receiver got no more than the sender sent (in a
/// timed test what was still in the sender's buffers when it ended is
/// sent but not received: a loaded lab with long round trips leaves most
/// of a short test there, so no lower bound is set);
/// `end.streams` has one entry per stream, whose sender and
/// receiver bytes add up to the sums. `--bidir` (3.12 says so only by the
/// `end.sum_*_bidir_reverse` sums; `num_streams` counts one direction):
/// the same for the server-to-client direction, whose streams are the
/// entries whose sender is not the client. UDP: `end.sum` reports packets
/// (> 0), lost packets (no more than those) and a `lost_percent` that is
/// their ratio.
pub fn check_test(report: &Value, want: &Check) -> Result<String, String> {
    if let Some(e) = report.get("error") {
        return Err(format!("iperf3 reported an error: {}", e.as_str().map_or_else(|| e.to_string(), str::to_string)));
    }
    let protocol = field(report, "start.test_start.protocol").and_then(Value::as_str).unwrap_or("?");
    let expected = if want.udp { "UDP" } else { "TCP" };
    if protocol != expected {
        return Err(format!("the test ran {protocol}, expected {expected}"));
    }
    let streams = count(report, "start.test_start.num_streams")?;
    if streams != want.streams {
        return Err(format!("{streams} streams, expected {}", want.streams));
    }
    let reverse = count(report, "start.test_start.reverse")? == 1;
    if reverse != want.reverse {
        return Err(format!("reverse is {reverse}, expected {}", want.reverse));
    }
    let bidir = field(report, "end.sum_sent_bidir_reverse").is_some();
    if bidir != want.bidir {
        return Err(format!("bidirectional is {bidir}, expected {}", want.bidir));
    }
    let per_stream = report.pointer("/end/streams").and_then(Value::as_array).ok_or("the report has no `end.streams`")?;
    let entries = if bidir { 2 * streams } else { streams };
    if per_stream.len() as u64 != entries {
        return Err(format!("`end.streams` has {} entries for {streams} streams", per_stream.len()));
    }
    let (sent, received) = direction(report, "", per_stream.iter().filter(|s| !bidir || client_sends(s)), want.udp)?;
    let mbit = number(report, "end.sum_received.bits_per_second")? / 1e6;
    let mut summary =
        format!("{protocol}, {streams} stream(s), reverse {reverse}: sent {sent} bytes, received {received} ({mbit:.2} Mbit/s)");
    if bidir {
        let (sent, received) = direction(report, "_bidir_reverse", per_stream.iter().filter(|s| !client_sends(s)), want.udp)?;
        let mbit = number(report, "end.sum_received_bidir_reverse.bits_per_second")? / 1e6;
        summary.push_str(&format!("; server to client: sent {sent} bytes, received {received} ({mbit:.2} Mbit/s)"));
    }
    if want.udp {
        let packets = count(report, "end.sum.packets")?;
        let lost = count(report, "end.sum.lost_packets")?;
        let lost_percent = number(report, "end.sum.lost_percent")?;
        if packets == 0 || lost > packets {
            return Err(format!("{packets} packets, {lost} lost"));
        }
        let ratio = 100.0 * lost as f64 / packets as f64;
        if (lost_percent - ratio).abs() > 0.01 {
            return Err(format!("lost_percent {lost_percent} for {lost} of {packets} packets ({ratio})"));
        }
        summary.push_str(&format!(", {packets} packets, {lost} lost ({lost_percent:.3} %)"));
    }
    Ok(summary)
}

/// Whether an `end.streams` entry is of a stream the client sends on.
fn client_sends(stream: &Value) -> bool {
    field(stream, "sender.sender").and_then(Value::as_bool).unwrap_or(false)
}

/// One direction's sums, `end.sum_sent{SUFFIX}` and
/// `end.sum_received{SUFFIX}`, checked as [`check_test`] says against its
/// `streams`; (sent, received).
fn direction<'r>(
    report: &Value,
    suffix: &str,
    streams: impl Iterator<Item = &'r Value>,
    udp: bool,
) -> Result<(u64, u64), String> {
    let (sent_key, received_key) = (format!("end.sum_sent{suffix}"), format!("end.sum_received{suffix}"));
    let sent = count(report, &format!("{sent_key}.bytes"))?;
    let received = count(report, &format!("{received_key}.bytes"))?;
    let (sent_s, received_s) =
        (number(report, &format!("{sent_key}.seconds"))?, number(report, &format!("{received_key}.seconds"))?);
    if sent == 0 || received == 0 {
        return Err(format!("sent {sent} bytes, received {received}: both must be counted"));
    }
    if sent_s <= 0.0 || received_s <= 0.0 {
        return Err(format!("over {sent_s} s sent, {received_s} s received"));
    }
    if received > sent {
        return Err(format!("received {received} bytes, more than the {sent} sent"));
    }
    let (mut stream_sent, mut stream_received) = (0u64, 0u64);
    for s in streams {
        if udp {
            // 3.12 gives one `udp` object per stream: the sender's bytes.
            stream_sent += count(s, "udp.bytes")?;
        } else {
            stream_sent += count(s, "sender.bytes")?;
            stream_received += count(s, "receiver.bytes")?;
        }
    }
    if stream_sent != sent || (!udp && stream_received != received) {
        return Err(format!(
            "the streams add up to {stream_sent} sent and {stream_received} received, the sums say {sent} and {received}"
        ));
    }
    Ok((sent, received))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reports of Debian's iperf3 3.12 client (kernel/iperf3's recordings).
    fn fixture(name: &str) -> String {
        let path = format!("{}/../../../kernel/iperf3/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn check(line: &str) -> Check {
        Check::parse(line.split_whitespace().map(OsString::from)).unwrap()
    }

    fn json(name: &str) -> Value {
        serde_json::from_str(&fixture(name)).unwrap()
    }

    #[test]
    fn real_reports_pass_as_asked_and_fail_otherwise() {
        let tcp = fixture("tcp_t1.json.client.out");
        let summary = check("f").run(&tcp).unwrap();
        assert!(summary.contains("sent 1163788288 bytes, received 1145503055"), "{summary}");
        assert!(check("f --reverse").run(&tcp).unwrap_err().contains("reverse"));
        assert!(check("f --udp").run(&tcp).unwrap_err().contains("expected UDP"));
        assert!(check("f --streams 4").run(&tcp).unwrap_err().contains("expected 4"));
        assert_eq!(check("f --get end.sum_received.bytes").run(&tcp).unwrap(), "1145503055");
        assert!(check("f --get end.nothing").run(&tcp).is_err());

        let reverse = fixture("tcp_reverse.json.client.out");
        assert!(check("f --reverse").run(&reverse).is_ok());
        assert!(check("f").run(&reverse).is_err());

        let bidir = fixture("tcp_bidir.json.client.out");
        let summary = check("f --bidir").run(&bidir).unwrap();
        assert!(summary.contains("sent 825753600 bytes, received 824442880"), "{summary}");
        assert!(summary.contains("server to client: sent 740556800 bytes, received 736755712"), "{summary}");
        assert!(check("f").run(&bidir).unwrap_err().contains("bidirectional"));
        assert!(check("f --bidir").run(&tcp).unwrap_err().contains("bidirectional"));
        assert_eq!(check("f --bidir --get end.sum_sent_bidir_reverse.bytes").run(&bidir).unwrap(), "740556800");

        let udp = fixture("udp_b10M.json.client.out");
        let summary = check("f --udp").run(&udp).unwrap();
        assert!(summary.contains("39 packets, 0 lost"), "{summary}");
        assert!(check("f").run(&udp).is_err());
    }

    #[test]
    fn the_ends_must_agree() {
        let base = json("tcp_t1.json.client.out");
        let tcp = |edit: &dyn Fn(&mut Value)| {
            let mut r = base.clone();
            edit(&mut r);
            check_test(&r, &check("f"))
        };
        assert!(tcp(&|_| {}).is_ok());
        assert!(tcp(&|r| r["end"]["sum_received"]["bytes"] = 0.into()).unwrap_err().contains("both must be counted"));
        assert!(tcp(&|r| r["end"]["sum_sent"]["bytes"] = 0.into()).is_err());
        assert!(tcp(&|r| r["end"]["sum_received"]["bytes"] = 1163788289u64.into()).unwrap_err().contains("more than"));
        // A timed test may leave most of what was sent in flight.
        assert!(tcp(&|r| {
            r["end"]["sum_received"]["bytes"] = 1000.into();
            r["end"]["streams"][0]["receiver"]["bytes"] = 1000.into();
        })
        .is_ok());
        assert!(tcp(&|r| r["end"]["sum_received"]["bytes"] = 1000.into()).unwrap_err().contains("add up"));
        assert!(tcp(&|r| r["end"]["streams"][0]["sender"]["bytes"] = 5.into()).unwrap_err().contains("add up"));
        assert!(tcp(&|r| r["end"]["streams"] = Value::Array(vec![])).unwrap_err().contains("0 entries"));
        assert!(tcp(&|r| {
            r.as_object_mut().unwrap().remove("end");
        })
        .is_err());
        assert!(tcp(&|r| r["error"] = "interrupt - the client has terminated".into()).unwrap_err().contains("terminated"));

        let base = json("udp_b10M.json.client.out");
        let udp = |edit: &dyn Fn(&mut Value)| {
            let mut r = base.clone();
            edit(&mut r);
            check_test(&r, &check("f --udp"))
        };
        assert!(udp(&|_| {}).is_ok());
        assert!(udp(&|r| {
            r["end"]["sum"]["lost_packets"] = 3.into();
            r["end"]["sum"]["lost_percent"] = (300.0 / 39.0).into();
        })
        .is_ok());
        assert!(udp(&|r| r["end"]["sum"]["lost_packets"] = 3.into()).unwrap_err().contains("lost_percent"));
        assert!(udp(&|r| {
            r["end"]["sum"].as_object_mut().unwrap().remove("lost_percent");
        })
        .unwrap_err()
        .contains("lost_percent"));
        assert!(udp(&|r| r["end"]["sum"]["packets"] = 0.into()).is_err());
    }

    #[test]
    fn both_directions_of_a_bidir_test_must_agree() {
        let base = json("tcp_bidir.json.client.out");
        let bidir = |edit: &dyn Fn(&mut Value)| {
            let mut r = base.clone();
            edit(&mut r);
            check_test(&r, &check("f --bidir"))
        };
        assert!(bidir(&|_| {}).is_ok());
        // The server-to-client direction is checked as the other.
        assert!(bidir(&|r| r["end"]["sum_received_bidir_reverse"]["bytes"] = 0.into())
            .unwrap_err()
            .contains("both must be counted"));
        assert!(bidir(&|r| r["end"]["sum_received_bidir_reverse"]["bytes"] = 740556801u64.into())
            .unwrap_err()
            .contains("more than"));
        assert!(bidir(&|r| r["end"]["streams"][1]["receiver"]["bytes"] = 5.into()).unwrap_err().contains("add up"));
        // Streams are told apart by their sender: two client-sent ones
        // add up to neither direction.
        assert!(bidir(&|r| r["end"]["streams"][1]["sender"]["sender"] = true.into()).unwrap_err().contains("add up"));
        assert!(bidir(&|r| {
            r["end"]["streams"].as_array_mut().unwrap().pop();
        })
        .unwrap_err()
        .contains("1 entries for 1 streams"));
    }

    #[test]
    fn a_refusal_is_checked_by_its_message() {
        let sctp = fixture("sctp.json.client.out");
        let expected = "unable to start stream listener: Protocol not supported";
        let c = Check { error: Some(expected.into()), ..check("f") };
        assert_eq!(c.run(&sctp).unwrap(), format!("refused: {expected}"));
        let wrong = Check { error: Some("the server is busy running a test. try again later".into()), ..check("f") };
        assert!(wrong.run(&sctp).unwrap_err().contains("expected `the server is busy"));
        assert!(check("f").run(&sctp).unwrap_err().contains("Protocol not supported"));
        assert!(c.run(&fixture("tcp_t1.json.client.out")).unwrap_err().contains("not refused"));
    }

    #[test]
    fn reports_in_a_console_log() {
        let tcp = fixture("tcp_t1.json.client.out");
        // iperf3's own lines, as a console gives them (CRLF), between others.
        let console = format!(
            "linux-guest: eth0 up\r\nIPERF3 old {{\"error\":\"x\"}}\r\nIPERF3 up {}\r\nlinux-guest: done\r\n",
            tcp.replace('\n', "\r\n")
        );
        assert!(check("log up").run(&console).is_ok());
        assert!(check("log old").run(&console).unwrap_err().contains("error: x"));
        assert!(check("log down").run(&console).unwrap_err().contains("no `IPERF3 down`"));
        // One line, the last of two.
        let one_line = format!("IPERF3 up {{\"error\":\"first\"}}\nIPERF3 up {}\n", tcp.replace(['\n', '\t'], ""));
        assert!(check("log up").run(&one_line).is_ok());
        assert!(check("log up").run("IPERF3 up {\"start\":").unwrap_err().contains("not JSON"));
        assert!(check("f").run("iperf3: error - unable to connect").unwrap_err().contains("not an iperf3 -J report"));
    }

    #[test]
    fn usage() {
        let c = check("r.json tag --udp --reverse --bidir --streams 4 --get end.sum.packets");
        assert_eq!(
            c,
            Check {
                file: "r.json".into(),
                tag: Some("tag".into()),
                udp: true,
                reverse: true,
                bidir: true,
                streams: 4,
                error: None,
                get: Some("end.sum.packets".into())
            }
        );
        for bad in ["", "f --streams 0", "f --streams x", "f a b", "f --bogus", "f --error"] {
            assert!(Check::parse(bad.split_whitespace().map(OsString::from)).is_err(), "{bad}");
        }
    }
}
