//! `cohort-event FILE KIND [KEY=VALUE...] [--get FIELD] [--first|--last] [--count]`,
//! `cohort-event --iperf3 FILE [TAG] [--udp] [--reverse] [--bidir] [--streams N] [--error TEXT] [--get FIELD]`
//!
//! See the crate documentation ([`cohort_event`]).

use std::io::Write;
use std::process::ExitCode;

/// `--iperf3`: check a stock iperf3 client's -J report.
fn iperf3(args: impl Iterator<Item = std::ffi::OsString>) -> ExitCode {
    let check = match cohort_event::iperf3::Check::parse(args) {
        Ok(check) => check,
        Err(e) => {
            eprintln!("cohort-event: {e}");
            eprintln!("{}", cohort_event::iperf3::USAGE);
            return ExitCode::from(2);
        }
    };
    let read = if check.file == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map(|_| buf)
    } else {
        std::fs::read(&check.file)
    };
    let text = match read {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            println!("cohort-event: {}: {e}", check.file);
            return ExitCode::from(1);
        }
    };
    match check.run(&text) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("{why}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1).peekable();
    if args.peek().is_some_and(|a| a == "--iperf3") {
        return iperf3(args.skip(1));
    }
    let query = match cohort_event::Query::parse(args) {
        Ok(Some(query)) => query,
        Ok(None) => {
            print!("{}", cohort_event::HELP);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("cohort-event: {e}");
            eprintln!("{}", cohort_event::USAGE);
            return ExitCode::from(2);
        }
    };
    let text = match query.read_input() {
        Ok(text) => text,
        Err(e) => {
            // A log not yet written is "not found": scenarios poll.
            eprintln!("cohort-event: {e}");
            return ExitCode::from(1);
        }
    };
    let answer = query.run(&text);
    for bad in &answer.unreadable {
        eprintln!("cohort-event: {}: {bad}", query.file);
    }
    if let Some(e) = &answer.no_such_field {
        eprintln!("cohort-event: {e}");
        return ExitCode::from(2);
    }
    let mut out = std::io::stdout().lock();
    for line in &answer.lines {
        if writeln!(out, "{line}").is_err() {
            return ExitCode::from(2);
        }
    }
    ExitCode::from(if answer.found { 0 } else { 1 })
}
