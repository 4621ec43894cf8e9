//! What `--once` measures: how long its one scan took, as a `BENCH` line
//! (`figures::Figure`, the format every Cohort benchmark prints and the
//! harness reads), over a path naming how many domains the scan looked at.

use std::time::Duration;

use figures::{Clock, Figure};

/// The figure's name.
pub const SCAN: &str = "discoveryd.scan";

/// The line for one scan of `domains` domains that took `took`, in
/// microseconds (to the nanosecond).
pub fn scan_line(domains: usize, took: Duration, clock: Clock) -> String {
    let path = format!("domains-{domains}");
    let figure = Figure { name: SCAN, path: path.as_str(), value: took.as_secs_f64() * 1e6, unit: "us", clock: clock.as_str() };
    // The object is far below figures::JSON_MAX (a usize path, fixed
    // words), so Display cannot fail.
    figure.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line() {
        assert_eq!(
            scan_line(32, Duration::from_nanos(1_234_567), Clock::Virtual),
            r#"BENCH {"name":"discoveryd.scan","path":"domains-32","value":1234.567,"unit":"us","clock":"virtual"}"#
        );
        assert_eq!(
            scan_line(1, Duration::from_millis(3), Clock::Wall),
            r#"BENCH {"name":"discoveryd.scan","path":"domains-1","value":3000.0,"unit":"us","clock":"wall"}"#
        );
        let long = scan_line(usize::MAX, Duration::MAX, Clock::default());
        assert!(long.starts_with("BENCH {") && long.ends_with(r#","unit":"us","clock":"wall"}"#), "{long}");
    }
}
