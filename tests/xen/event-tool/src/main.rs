//! `cohort-event FILE KIND [KEY=VALUE...] [--get FIELD] [--first|--last] [--count]`
//!
//! See the crate documentation ([`cohort_event`]).

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let query = match cohort_event::Query::parse(std::env::args_os().skip(1)) {
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
