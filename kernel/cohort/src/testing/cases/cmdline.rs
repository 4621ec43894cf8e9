//! The parser runs here too, on the kernel's own build (the host tests cover
//! it in depth); the boot-time path is checked by the harness with
//! `bad.key=1`.
use crate::ensure;
use crate::testing::Outcome;
use alloc::string::ToString;
use cohort_boot::cmdline::{parse, Error};

pub fn cmdline_errors() -> Outcome {
    let err = parse("log=info bad.key=1").err().ok_or("bad.key accepted")?;
    ensure!(err == Error::UnknownKey { key: "bad.key" }, "got {err:?}");
    ensure!(err.to_string().contains("`bad.key`"), "message does not name the key: {err}");
    let err = parse("timer.hz=fast").err().ok_or("timer.hz=fast accepted")?;
    ensure!(err.key() == Some("timer.hz") && err.to_string().contains("`fast`"), "got {err}");
    ensure!(parse("log").is_err() && parse("test=all test=all").is_err(), "malformed lines accepted");
    let ok = parse("timer.hz=250 log=warn").map_err(|e| e.to_string())?;
    ensure!(ok.timer_hz == 250, "timer.hz parsed as {}", ok.timer_hz);
    Ok(())
}
