//! `cohort-event`: what a Xen scenario in dom0 (busybox sh, no python or
//! jq) asks of a guest's console log: a Cohort guest's, or a Linux
//! reference guest's (`tests/xen/linux-guest`: its init and `netref` print
//! the same lines). It reads only the guest's `EVENT {json}` lines, with
//! the same serde types the kernel writes them with ([`figures::Event`];
//! schema in `kernel/figures/src/result.rs`), so no pass or fail depends
//! on a human log line.
//!
//! ```text
//! cohort-event FILE KIND [KEY=VALUE...] [--after 'KIND [KEY=VALUE...]'] [--get FIELD[,FIELD...]]
//!              [--first|--last] [--count]
//! ```
//!
//! * `FILE`: the console log (`-`: standard input). Every line holding
//!   `EVENT {` is read, wherever it starts (consoles prefix lines, e.g.
//!   `(d3) `); a line whose object does not read as an event (garbage, a
//!   line still being written) is said on standard error and never matches.
//! * `KIND`: the event's `kind` (`stream`, `channel_closed`, ...). A kind
//!   the schema does not have is a usage error. `bench` reads the
//!   `BENCH {json}` figure lines instead ([`figures::Figure`]: `name`,
//!   `path`, `value`, `unit`, `clock`).
//! * `KEY=VALUE`: the event's field `KEY` reads `VALUE`: a string as is,
//!   anything else as its JSON (`true`, `3`, `null`, `99.5`). `KEY` may
//!   name a field inside an object: `frames.channel`.
//! * `--after 'KIND [KEY=VALUE...]'`: only events after the first event
//!   that matches this (one argument; none match if it is not there).
//! * `--get FIELD`: print that field of each match (as for `KEY=VALUE`),
//!   not the match's JSON object; `--get A,B,C`: those fields, separated
//!   by spaces.
//! * `--first`, `--last`: only the first, or last, match.
//! * `--count`: print how many events match.
//!
//! `cohort-event --iperf3 ...` checks a stock iperf3 client's `-J` report
//! instead ([`iperf3`]).
//!
//! Exit status: 0 if an event matched, 1 if none did (or the file cannot
//! be read: a scenario polls a log that is not there yet), 2 for a usage
//! error (also a `KEY` or `FIELD` that the kind's events do not have).

use std::ffi::OsString;

pub mod iperf3;

use figures::{event_json_in, Event, Figure};
use serde_json::Value;

pub const USAGE: &str =
    "usage: cohort-event FILE KIND [KEY=VALUE...] [--after 'KIND [KEY=VALUE...]'] [--get FIELD[,FIELD...]] [--first|--last] [--count]";

pub const HELP: &str = "\
usage: cohort-event FILE KIND [KEY=VALUE...] [--after 'KIND [KEY=VALUE...]']
                    [--get FIELD[,FIELD...]] [--first|--last] [--count]

Finds a guest's EVENT {json} lines of kind KIND in the console log
FILE (- for standard input) whose fields equal the given values (strings
as they are, other values as JSON: true, 3, null; a.b names a field of an
object; KIND bench: the BENCH figure lines, fields name, path, value, unit,
clock); with --after, only those after the first event that matches its
argument. Prints each match's JSON object, or its FIELDs (separated by
spaces) with --get, or the number of matches with --count. Lines that do
not read as an event are said on standard error and never match.

Exit status: 0 found, 1 not found (or FILE unreadable), 2 usage error.

cohort-event --iperf3 FILE [TAG] [--udp] [--reverse] [--streams N] [--error TEXT] [--get FIELD]

Checks iperf3's -J report in FILE (or, with TAG, the last one printed after
`IPERF3 TAG ` in a console log): a test that ran as asked, both ends'
bytes counted and consistent; or, with --error, a test refused with
exactly that message. Prints a summary (or FIELD); exit status 0 passed,
1 failed, 2 usage error.
";

/// Which matches to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    All,
    First,
    Last,
}

/// Events of one kind whose fields read the given values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    pub kind: String,
    pub fields: Vec<(String, String)>,
}

/// One invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub file: String,
    pub filter: Filter,
    /// Only events after the first that this matches.
    pub after: Option<Filter>,
    /// Fields to print, in order.
    pub get: Vec<String>,
    pub pick: Pick,
    pub count: bool,
}

/// What a query found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Answer {
    /// What to print, one line each.
    pub lines: Vec<String>,
    pub found: bool,
    /// `line N: why` for each line with `EVENT {` that is not an event.
    pub unreadable: Vec<String>,
    /// A `KEY` or `FIELD` that events of the kind do not have (a
    /// misspelt key would else never match, silently): a usage error.
    pub no_such_field: Option<String>,
}

/// The pseudo-kind of `BENCH {json}` figure lines.
pub const BENCH: &str = "bench";

/// Is `kind` one of the schema's kinds (or [`BENCH`])? serde says so: an
/// object with only the tag is missing fields for a known kind, an unknown
/// variant else.
fn known_kind(kind: &str) -> bool {
    if kind == BENCH {
        return true;
    }
    let probe = serde_json::json!({ "kind": kind });
    match serde_json::from_value::<Event<String>>(probe) {
        Ok(_) => true,
        Err(e) => !e.to_string().contains("unknown variant"),
    }
}

/// A field as the command line gives it: a string as is, else JSON.
fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn field<'v>(object: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(object, |v, key| v.as_object()?.get(key))
}

impl Filter {
    /// `KIND KEY=VALUE...`, as words.
    fn parse(mut words: impl Iterator<Item = String>) -> Result<Filter, String> {
        let kind = words.next().ok_or("no KIND")?;
        if !known_kind(&kind) {
            return Err(format!("no event kind `{kind}`; the kinds: {}", figures::KINDS.join(", ")));
        }
        let fields = words
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) if !k.is_empty() && k != "kind" => Ok((k.to_string(), v.to_string())),
                _ => Err(format!("`{kv}` is not KEY=VALUE")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Filter { kind, fields })
    }

    fn matches(&self, object: &Value) -> bool {
        object.get("kind").and_then(Value::as_str) == Some(self.kind.as_str())
            && self.fields.iter().all(|(k, v)| field(object, k).is_some_and(|f| as_text(f) == *v))
    }

    /// The first `KEY` (or one of `extra`) whose top-level name this
    /// kind's `event` lacks (`frames.channel` is fine where `frames` is
    /// `null`: that event just does not match).
    fn unknown_field<'a>(&'a self, event: &Value, extra: &'a [String]) -> Option<String> {
        let has = |k: &&String| event.get(k.split('.').next().unwrap_or_default()).is_some();
        self.fields
            .iter()
            .map(|(k, _)| k)
            .chain(extra)
            .find(|k| !has(k))
            .map(|k| format!("{} events have no field `{k}`", self.kind))
    }
}

/// The event on a console line: `None` without `EVENT {`, `Some(Err)` if
/// what follows is not an event.
pub fn event_in(line: &str) -> Option<Result<Event<String>, String>> {
    let json = event_json_in(line)?;
    Some(match serde_json::Deserializer::from_str(json).into_iter::<Event<String>>().next() {
        Some(Ok(event)) => Ok(event),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("nothing after EVENT".into()),
    })
}

/// What a console line holds: an event, a figure (as an object of kind
/// [`BENCH`]), or, `Some(Err)`, something that does not read as either.
fn record_in(line: &str) -> Option<Result<(Value, String), String>> {
    if let Some(event) = event_in(line) {
        return Some(event.and_then(|e| {
            let object = serde_json::to_value(&e).map_err(|e| e.to_string())?;
            // In the schema's order, as the guest wrote it.
            let text = serde_json::to_string(&e).map_err(|e| e.to_string())?;
            Ok((object, text))
        }));
    }
    let json = figures::json_in(line)?;
    Some(match serde_json::Deserializer::from_str(json).into_iter::<Figure<String>>().next() {
        Some(Ok(figure)) => (|| {
            let text = serde_json::to_string(&figure)?;
            let mut object = serde_json::to_value(&figure)?;
            if let Some(o) = object.as_object_mut() {
                o.insert("kind".into(), Value::String(BENCH.into()));
            }
            Ok::<_, serde_json::Error>((object, text))
        })()
        .map_err(|e| e.to_string()),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("nothing after BENCH".into()),
    })
}

impl Query {
    /// `Ok(None)`: help was asked for.
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Option<Query>, String> {
        use lexopt::prelude::*;
        let mut parser = lexopt::Parser::from_args(args);
        let (mut positional, mut get, mut pick, mut count) = (Vec::new(), Vec::new(), Pick::All, false);
        let mut after = None;
        let pick_once = |pick: &mut Pick, to: Pick| {
            if *pick != Pick::All && *pick != to {
                return Err("--first and --last exclude each other".to_string());
            }
            *pick = to;
            Ok(())
        };
        while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
            match arg {
                Long("help") | Short('h') => return Ok(None),
                Long("get") => {
                    let fields = parser.value().map_err(|e| e.to_string())?.string().map_err(|e| e.to_string())?;
                    get = fields.split(',').map(str::to_string).collect();
                    if get.iter().any(String::is_empty) {
                        return Err(format!("`--get {fields}`: an empty FIELD"));
                    }
                }
                Long("after") => {
                    let spec = parser.value().map_err(|e| e.to_string())?.string().map_err(|e| e.to_string())?;
                    after =
                        Some(Filter::parse(spec.split_whitespace().map(str::to_string)).map_err(|e| format!("--after: {e}"))?);
                }
                Long("first") => pick_once(&mut pick, Pick::First)?,
                Long("last") => pick_once(&mut pick, Pick::Last)?,
                Long("count") => count = true,
                Value(v) => positional.push(v.string().map_err(|e| e.to_string())?),
                other => return Err(other.unexpected().to_string()),
            }
        }
        let mut positional = positional.into_iter();
        let file = positional.next().ok_or("no FILE")?;
        let filter = Filter::parse(positional)?;
        if count && !get.is_empty() {
            return Err("--count and --get exclude each other".into());
        }
        Ok(Some(Query { file, filter, after, get, pick, count }))
    }

    pub fn read_input(&self) -> Result<String, String> {
        let bytes = if self.file == "-" {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map(|_| buf)
        } else {
            std::fs::read(&self.file)
        };
        // Consoles may carry stray bytes; the EVENT lines are ASCII.
        bytes.map(|b| String::from_utf8_lossy(&b).into_owned()).map_err(|e| format!("{}: {e}", self.file))
    }

    /// The answer for a log's text.
    pub fn run(&self, text: &str) -> Answer {
        let mut answer = Answer::default();
        let mut matches = Vec::new();
        let mut before = self.after.as_ref();
        for (n, line) in text.lines().enumerate() {
            let (object, text) = match record_in(line) {
                None => continue,
                Some(Err(why)) => {
                    answer.unreadable.push(format!("line {}: not an event ({why}): {}", n + 1, line.trim_end()));
                    continue;
                }
                Some(Ok(record)) => record,
            };
            if let Some(after) = before {
                if object.get("kind").and_then(Value::as_str) == Some(after.kind.as_str()) && answer.no_such_field.is_none() {
                    answer.no_such_field = after.unknown_field(&object, &[]);
                }
                if after.matches(&object) {
                    before = None;
                }
                continue;
            }
            if object.get("kind").and_then(Value::as_str) != Some(self.filter.kind.as_str()) {
                continue;
            }
            if answer.no_such_field.is_none() {
                answer.no_such_field = self.filter.unknown_field(&object, &self.get);
            }
            if self.filter.matches(&object) {
                matches.push((text, object));
            }
        }
        let matches: Vec<(String, Value)> = match self.pick {
            Pick::All => matches,
            Pick::First => matches.into_iter().take(1).collect(),
            Pick::Last => matches.pop().into_iter().collect(),
        };
        answer.found = !matches.is_empty();
        if self.count {
            answer.lines.push(matches.len().to_string());
            return answer;
        }
        for (text, object) in matches {
            answer.lines.push(if self.get.is_empty() {
                text
            } else {
                let values: Vec<String> =
                    self.get.iter().map(|name| field(&object, name).map_or_else(String::new, as_text)).collect();
                values.join(" ")
            });
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A console log as xenconsoled and Xen's ring give them: human lines,
    /// prefixed EVENT lines, garbage, a line cut while being written.
    const LOG: &str = concat!(
        "[    0.001] INFO  cohort: hvm_start_info version 1; command line: `app=stream`\n",
        "(d3) EVENT {\"kind\":\"address\",\"ip\":\"198.18.0.21\",\"prefix\":15,\"source\":\"static\"}\n",
        "[    1.200] INFO  residency: channel to dom2 (00:16:3e:c0:01:20): up, 5.600 ms after dom0 listed it\n",
        "EVENT {\"kind\":\"channel_up\",\"peer\":2,\"mac\":\"00:16:3e:c0:01:20\",\"after_listed_ms\":5.6,\"xen_time_ns\":99}\r\n",
        "EVENT {\"kind\":\"progress\",\"app\":\"stream\",\"done\":1000,\"total\":67108864,\"unit\":\"bytes\"}\n",
        "EVENT {\"kind\":\"progress\",\"app\":\"stream\",\"done\":2000,\"total\":67108864,\"unit\":\"bytes\"}\n",
        "EVENT {\"kind\":\"no_such_kind\",\"x\":1}\n",
        "garbage \u{1} EVENT {not json}\n",
        "EVENT {\"kind\":\"frames\",\"of\":\"stream\",\"channel\":48216,\"netfront\":3,\"share\":99.994}\n",
        "BENCH {\"name\":\"net.tcp_stream\",\"path\":\"channel\",\"value\":357.913,\"unit\":\"Mbit/s\",\"clock\":\"virtual\"}\n",
        "(d3) BENCH {\"name\":\"net.tcp_stream\",\"path\":\"netfront\",\"value\":100.5,\"unit\":\"Mbit/s\",\"clock\":\"virtual\"}\n",
        "BENCH {\"name\":\"net.tcp_rr\",\"path\":\"channel\",\"value\":\"fast\"}\n",
        "EVENT {\"kind\":\"stream\",\"path\":\"channel\",\"bytes\":67108864,\"seconds\":1.5,\"mbit_per_s\":357.913,",
        "\"check\":\"sha256\",\"sent_digest\":\"ab\",\"sink_bytes\":67108864,\"sink_digest\":\"ab\",\"match\":true,",
        "\"frames\":{\"channel\":48216,\"netfront\":3,\"share\":99.994}} trailing words\n",
        "EVENT {\"kind\":\"stream\",\"path\":\"netfront\",\"bytes\":5,\"seconds\":1.0,\"mbit_per_s\":0.0,",
        "\"check\":\"count\",\"sent_digest\":\"\",\"sink_bytes\":5,\"sink_digest\":\"\",\"match\":false,\"frames\":null}\n",
        "(d3) EVENT {\"kind\":\"channel_closed\",\"peer\":2,\"mac\":\"00:16:3e:c0:01:20\",\"why\":\"the peer withdrew\",\"was_up\":true,\"xen_time_ns\":7}\n",
        "EVENT {\"kind\":\"app\",\"app\":\"stream\",\"ok\":true,\"err",
    );

    fn args(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    fn query(line: &str) -> Query {
        Query::parse(args(line)).unwrap().unwrap()
    }

    fn answer(line: &str) -> Answer {
        query(line).run(LOG)
    }

    #[test]
    fn finds_events_by_kind_and_fields() {
        let a = answer("log address");
        assert!(a.found);
        assert_eq!(a.lines, [r#"{"kind":"address","ip":"198.18.0.21","prefix":15,"source":"static"}"#]);
        assert!(answer("log address ip=198.18.0.21 prefix=15").found);
        assert!(!answer("log address ip=198.18.0.2").found, "a prefix of the value is not the value");
        assert!(answer("log channel_up peer=2").found, "a CRLF line");
        assert!(!answer("log channel_up peer=3").found);
        assert!(answer("log channel_closed peer=2 was_up=true").found, "a (dN) prefix");
        assert!(!answer("log channel_released peer=2").found);
        assert!(answer("log stream match=true path=channel").found);
        assert!(answer("log stream match=false frames=null").found);
        assert!(answer("log stream frames.channel=48216").found);
        assert!(!answer("log stream frames.channel=0").found);
    }

    #[test]
    fn gets_fields_counts_and_picks() {
        assert_eq!(answer("log progress app=stream --get done").lines, ["1000", "2000"]);
        assert_eq!(answer("log progress --get done --last").lines, ["2000"]);
        assert_eq!(answer("log progress --get done --first").lines, ["1000"]);
        assert_eq!(answer("log frames of=stream --get share").lines, ["99.994"]);
        assert_eq!(answer("log stream --get frames.netfront").lines, ["3", ""]);
        assert_eq!(answer("log stream --count").lines, ["2"]);
        assert_eq!(answer("log stream match=true --count").lines, ["1"]);
        let none = answer("log rr --count");
        assert_eq!((none.found, none.lines.as_slice()), (false, ["0".to_string()].as_slice()));
        let none = answer("log rr");
        assert!(!none.found && none.lines.is_empty());
    }

    #[test]
    fn after_starts_at_the_first_match_of_another_event() {
        // `--after` is one argument; `args` splits on spaces, so build it.
        let after = |line: &str, spec: &str| {
            let mut a = args(line);
            a.extend(["--after".into(), spec.into()]);
            Query::parse(a).unwrap().unwrap().run(LOG)
        };
        assert_eq!(after("log progress --get done", "channel_up peer=2").lines, ["1000", "2000"]);
        assert_eq!(after("log progress --get done", "progress done=1000").lines, ["2000"], "not the line itself");
        assert_eq!(after("log progress --count", "frames").lines, ["0"]);
        let missing = after("log stream", "channel_up peer=3");
        assert!(!missing.found && missing.lines.is_empty(), "no start: nothing matches");
        assert_eq!(after("log stream --get bytes,match,frames.channel", "channel_up").lines, ["67108864 true 48216", "5 false "]);
        assert_eq!(
            after("log stream", "channel_up per=2").no_such_field.as_deref(),
            Some("channel_up events have no field `per`")
        );
        assert!(answer("log stream --get bytes,mach").no_such_field.is_some());
    }

    #[test]
    fn bench_reads_the_figure_lines() {
        assert_eq!(answer("log bench name=net.tcp_stream --get path,value").lines, ["channel 357.913", "netfront 100.5"]);
        assert_eq!(
            answer("log bench path=netfront").lines,
            [r#"{"name":"net.tcp_stream","path":"netfront","value":100.5,"unit":"Mbit/s","clock":"virtual"}"#]
        );
        assert_eq!(answer("log bench --count").lines, ["2"], "a figure line that does not read is none");
        assert!(!answer("log bench name=net.tcp_rr").found);
        assert_eq!(answer("log bench nme=x").no_such_field.as_deref(), Some("bench events have no field `nme`"));
        // Events are not figures, nor figures events.
        assert!(!answer("log frames of=bench").found);
    }

    #[test]
    fn lines_that_are_not_events_are_said_and_never_match() {
        let a = answer("log app");
        assert!(!a.found, "a line still being written");
        let lines: Vec<&str> = a.unreadable.iter().map(|l| &l[..l.find(':').unwrap()]).collect();
        assert_eq!(lines, ["line 7", "line 8", "line 12", "line 16"]);
        assert!(a.unreadable[0].contains("no_such_kind"));
        // Human lines are never read, even when they say the same.
        let human = "[ 1.0] INFO stream: 5 bytes, sha256 ab (match)\nchannel to dom2: closed\n";
        let a = query("log stream").run(human);
        assert!(!a.found && a.unreadable.is_empty());
    }

    #[test]
    fn a_field_the_kind_lacks_is_a_usage_error() {
        assert_eq!(answer("log stream mach=true").no_such_field.as_deref(), Some("stream events have no field `mach`"));
        assert!(answer("log progress --get dones").no_such_field.is_some());
        assert_eq!(answer("log stream frames.channel=1").no_such_field, None);
    }

    #[test]
    fn usage() {
        let q = query("/var/log/x.log rr path=channel --get p99_us --last");
        assert_eq!(
            q,
            Query {
                file: "/var/log/x.log".into(),
                filter: Filter { kind: "rr".into(), fields: vec![("path".into(), "channel".into())] },
                after: None,
                get: vec!["p99_us".into()],
                pick: Pick::Last,
                count: false,
            }
        );
        assert_eq!(query("- app --get=error").get, ["error"]);
        assert_eq!(Query::parse(args("--help")), Ok(None));
        for bad in [
            "",
            "log",
            "log strem",
            "log stream match",
            "log stream =1",
            "log stream kind=rr",
            "log rr --first --last",
            "log rr --count --get x",
            "log rr --bogus",
            "log rr --get",
            "log rr --get a,,b",
            "log rr --after",
            "log rr --after strem",
            "log rr --after stream=1",
        ] {
            assert!(Query::parse(args(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_kind_of_the_schema_is_known() {
        for kind in figures::KINDS {
            assert!(known_kind(kind), "{kind}");
        }
        assert!(!known_kind("Stream") && !known_kind("") && !known_kind("x\"y"));
    }
}
