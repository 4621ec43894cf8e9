//! What a guest prints for the host to read: one benchmark figure and the
//! line that carries it,
//!
//! ```text
//! BENCH {"name":"net.tcp_rr","path":"channel","value":8506.0,"unit":"transactions/s","clock":"virtual"}
//! ```
//!
//! The kernel writes it (`Display`, with serde-json-core: no heap, strings
//! escaped); the host harness reads it with serde_json into a
//! `Figure<String>` (see [`json_in`]); shell scripts grep it, so the keys
//! stay in this order, without spaces. The value is given to the
//! thousandth, as the shortest decimal that reads back as that number; a
//! value that is not a finite number is written `null` (JSON has no NaN),
//! which readers reject.
//!
//! And the guest's results and events ([`Event`], the `EVENT {json}`
//! lines, see [`result`] for the schema), written and read the same way.
#![no_std]
#![forbid(unsafe_code)]

use core::fmt;
use serde::{Deserialize, Serialize, Serializer};

pub mod result;

pub use result::{event_json_in, Event, Frames, EVENT_JSON_MAX, EVENT_PREFIX, KINDS};

/// What precedes the JSON object of a figure in a line.
pub const PREFIX: &str = "BENCH ";

/// The longest JSON object `Display` writes (names, paths and units are
/// short identifiers; a longer figure is an error, never a cut line).
pub const JSON_MAX: usize = 512;

/// One measured figure. `S` is `&str` where it is written (the kernel)
/// and `String` where it is read (the harness).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figure<S> {
    /// What was measured, e.g. `net.tcp_stream`.
    pub name: S,
    /// Over what: `channel`, `netfront`, `boot`, ... (a benchmark script
    /// may append a configuration: `channel/ring8`).
    pub path: S,
    #[serde(serialize_with = "thousandths")]
    pub value: f64,
    pub unit: S,
    /// What the guest's clock counted: `wall` or `virtual`.
    pub clock: S,
}

/// What a figure's clock counted, the `clock` field: `virtual` when the
/// machine runs under QEMU's `-icount` (instructions as nanoseconds),
/// `wall` otherwise. The kernel's `bench.clock=` and discoveryd's
/// `--clock` both take these words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Clock {
    #[default]
    Wall,
    Virtual,
}

impl Clock {
    /// The clock a word names, or `None`.
    pub fn parse(word: &str) -> Option<Clock> {
        match word {
            "wall" => Some(Clock::Wall),
            "virtual" => Some(Clock::Virtual),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Clock::Wall => "wall",
            Clock::Virtual => "virtual",
        }
    }
}

/// `value` rounded to the thousandth, half away from zero.
fn thousandths<Ser: Serializer>(value: &f64, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
    serializer.serialize_f64(round_thousandths(*value))
}

pub(crate) fn round_thousandths(v: f64) -> f64 {
    // Beyond 2^53 / 1000 a double has no thousandths to round (and the
    // whole number below must fit a u64); NaN and infinities stay as
    // they are.
    const LIMIT: f64 = (1u64 << 53) as f64 / 1000.0;
    if v.is_nan() || v.abs() >= LIMIT {
        return v;
    }
    // core has no f64::round without std.
    let scaled = v * 1000.0;
    let whole = (scaled.abs() + 0.5) as u64 as f64;
    // `+ 0.0` turns a -0.0 (a tiny negative value) into 0.0.
    (if scaled < 0.0 { -whole } else { whole }) / 1000.0 + 0.0
}

impl<S: Serialize> Figure<S> {
    /// The JSON object, written into `buf`.
    pub fn to_json<'b>(&self, buf: &'b mut [u8]) -> Result<&'b str, serde_json_core::ser::Error> {
        let len = serde_json_core::to_slice(self, buf)?;
        // serde-json-core writes UTF-8 only (it escapes inside `str`s).
        core::str::from_utf8(&buf[..len]).map_err(|_| serde_json_core::ser::Error::BufferFull)
    }
}

/// The whole line, `BENCH {...}`; `fmt::Error` (nothing written) if the
/// object is longer than [`JSON_MAX`].
impl<S: Serialize> fmt::Display for Figure<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; JSON_MAX];
        let json = self.to_json(&mut buf).map_err(|_| fmt::Error)?;
        f.write_str(PREFIX)?;
        f.write_str(json)
    }
}

/// The JSON object of a figure in a console line, wherever `BENCH {`
/// starts (consoles prefix lines: `(d3) BENCH {...}`); it runs to the end
/// of the line, so read one object and ignore the rest.
pub fn json_in(line: &str) -> Option<&str> {
    let at = line.find("BENCH {")?;
    Some(&line[at + PREFIX.len()..])
}

#[cfg(test)]
mod tests {
    #[test]
    fn clocks() {
        use super::Clock;
        for c in [Clock::Wall, Clock::Virtual] {
            assert_eq!(Clock::parse(c.as_str()), Some(c));
        }
        assert_eq!((Clock::Wall.as_str(), Clock::Virtual.as_str()), ("wall", "virtual"));
        assert_eq!(Clock::parse("tsc"), None);
        assert_eq!(Clock::default(), Clock::Wall);
    }

    extern crate std;
    use super::*;
    use std::string::{String, ToString};

    fn fig(name: &str, value: f64) -> Figure<&str> {
        Figure { name, path: "boot", value, unit: "ms", clock: "wall" }
    }

    /// How the harness reads a line.
    fn read(line: &str) -> Result<Figure<String>, String> {
        let json = json_in(line).ok_or("no BENCH object")?;
        let mut objects = serde_json::Deserializer::from_str(json).into_iter::<Figure<String>>();
        objects.next().ok_or("nothing after BENCH")?.map_err(|e| e.to_string())
    }

    #[test]
    fn the_line_format_is_exact() {
        assert_eq!(
            fig("boot.x", 12.5).to_string(),
            r#"BENCH {"name":"boot.x","path":"boot","value":12.5,"unit":"ms","clock":"wall"}"#
        );
        assert_eq!(fig("n", 7.0).to_string(), r#"BENCH {"name":"n","path":"boot","value":7.0,"unit":"ms","clock":"wall"}"#);
    }

    #[test]
    fn values_are_given_to_the_thousandth() {
        let value = |v: f64| {
            let line = fig("n", v).to_string();
            let at = line.find("\"value\":").unwrap() + 8;
            String::from(&line[at..at + line[at..].find(',').unwrap()])
        };
        assert_eq!(value(3561.123456), "3561.123");
        assert_eq!(value(0.0005), "0.001");
        assert_eq!(value(-2.0004), "-2.0");
        assert_eq!(value(-2.0005), "-2.001");
        assert_eq!(value(-0.0001), "0.0");
        assert_eq!(value(1e300), "1e300");
        assert_eq!(value(1_073_741_824.0), "1073741824.0");
        assert_eq!(value(f64::NAN), "null");
        assert_eq!(value(f64::INFINITY), "null");
    }

    #[test]
    fn written_lines_read_back() {
        let written = Figure { name: "net.tcp_rr", path: "channel", value: 8506.25, unit: "transactions/s", clock: "virtual" };
        let read_back = read(&std::format!("(d3) {written}")).unwrap();
        assert_eq!(
            read_back,
            Figure {
                name: "net.tcp_rr".into(),
                path: "channel".into(),
                value: 8506.25,
                unit: "transactions/s".into(),
                clock: "virtual".into()
            }
        );
    }

    #[test]
    fn strings_are_escaped() {
        let name = "a \"quoted\" name\\ with\ttab, newline\n and µ";
        let line = fig(name, 1.0).to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains(r#""name":"a \"quoted\" name\\ with\ttab, newline\n and µ""#), "{line}");
        assert_eq!(read(&line).unwrap().name, name);
    }

    #[test]
    fn what_the_harness_writes_and_other_spellings_read() {
        // The harness's and the benchmark scripts' own lines: three
        // decimals, extra keys, spaces, a trailing carriage return.
        let f = read(r#"BENCH {"name":"boot.x","path":"boot","value":12.500,"unit":"ms","clock":"wall"}"#).unwrap();
        assert_eq!((f.name.as_str(), f.value), ("boot.x", 12.5));
        let f = read(
            "x BENCH { \"clock\": \"wall\", \"extra\": [1], \"name\": \"n\", \"path\": \"p\", \"value\": 7, \"unit\": \"ms\" }\r",
        )
        .unwrap();
        assert_eq!((f.name.as_str(), f.value, f.clock.as_str()), ("n", 7.0, "wall"));
    }

    #[test]
    fn bad_lines_do_not_read() {
        assert_eq!(json_in("no figure here"), None);
        assert!(read(r#"BENCH {"name":"a"}"#).unwrap_err().contains("missing field"));
        assert!(read(&fig("n", f64::NAN).to_string()).is_err(), "null is no value");
        assert!(read(r#"BENCH {"name":"a","path":"p","value":"x","unit":"u","clock":"wall"}"#).is_err());
    }

    #[test]
    fn a_figure_too_long_for_the_buffer_is_an_error_not_a_cut_line() {
        let long = "x".repeat(JSON_MAX);
        let mut out = String::new();
        assert!(fmt::write(&mut out, format_args!("{}", fig(&long, 1.0))).is_err());
        assert_eq!(out, "");
        let mut small = [0u8; 16];
        assert!(fig("n", 1.0).to_json(&mut small).is_err());
    }
}
