//! `app=crr`: TCP_CRR, `net.count` transactions of `net.msg` bytes with
//! the echo at `net.peer`:`net.port`, each on a new connection,
//! `net.reps` times.

use super::{ip, Cost, Run, PROGRESS_EVERY, SECOND, STALL_TIMEOUT};
use crate::crr::{Crr, CrrReport};
use crate::{Part, Stack};
use alloc::format;
use alloc::string::String;
use figures::Event;

impl<S: Stack> Run<'_, S> {
    pub(super) fn crr_reps(&mut self) -> Result<(), String> {
        (0..self.net.reps).try_for_each(|_| self.crr().map(drop))
    }

    fn crr(&mut self) -> Result<CrrReport, String> {
        let (peer, port, count, msg) = (self.peer()?, self.net.port, self.net.count, self.net.msg as usize);
        self.settle();
        log::info!("crr: {count} transactions of {msg} bytes with {}:{port}, a connection each", ip(peer));
        let before = self.frames();
        let mut crr = Crr::new(peer, port, count, msg);
        let cost = match self.drive_crr(&mut crr) {
            Ok(cost) => cost,
            Err(e) => {
                crr.abandon(self.stack.sockets());
                return Err(e);
            }
        };
        let report = crr.finish(self.stack.sockets());
        let frames = self.frame_share(&before, "crr");
        let path = self.path_label(None, frames);
        let path = path.as_str();
        let l = &report.latency;
        self.print(format_args!(
            "crr: {} transactions in {:.3} s, {:.0}/s over {path}, {} refused; latency mean {:.1} us, p50 {:.1} us, p99 {:.1} us",
            report.transactions,
            report.seconds,
            report.per_second(),
            report.refused,
            l.mean_us,
            l.p50_us,
            l.p99_us
        ));
        self.result(&Event::Crr {
            path,
            transactions: report.transactions,
            seconds: report.seconds,
            per_second: report.per_second(),
            mean_us: l.mean_us,
            p50_us: l.p50_us,
            p99_us: l.p99_us,
            refused: report.refused,
            frames,
        });
        self.figure("net.tcp_crr", path, report.per_second(), "transactions/s");
        self.figure("net.tcp_crr_latency_p50", path, l.p50_us, "us");
        self.figure("net.tcp_crr_latency_p99", path, l.p99_us, "us");
        self.figure("net.tcp_crr_latency_mean", path, l.mean_us, "us");
        self.cost_figures(path, &cost);
        Ok(report)
    }

    /// Runs `crr` to its end: bounded by the stall timeout (no transaction
    /// for that long is an error) and by its own refusal budget; its cost.
    fn drive_crr(&mut self, crr: &mut Crr) -> Result<Cost, String> {
        let mut next_report = self.now() + PROGRESS_EVERY;
        let mut last_progress = (self.now(), 0);
        let frames = self.profile_start();
        while !crr.done() {
            self.check_stop()?;
            let polled = self.stack.step();
            let now = self.now();
            let start = now;
            let next_port = &mut self.next_port;
            let moved = {
                let (iface, sockets) = self.stack.parts();
                crr.service(iface, sockets, now, &mut || super::take_port(next_port))?
            };
            let now = self.now();
            self.stack.profile().add(Part::App, now.saturating_sub(start));
            let (done, count) = crr.progress();
            if done != last_progress.1 {
                last_progress = (now, done);
            } else if now.saturating_sub(last_progress.0) > STALL_TIMEOUT {
                return Err(format!("crr: no transaction for {} s ({done} of {count} done)", STALL_TIMEOUT / SECOND));
            }
            if now > next_report {
                next_report += PROGRESS_EVERY;
                log::info!("crr: {done} of {count} transactions");
                self.result(&Event::<&str>::Progress {
                    app: "crr",
                    done: u64::from(done),
                    total: u64::from(count),
                    unit: "transactions",
                });
            }
            if !polled && !moved {
                self.stack.wait();
            }
        }
        Ok(self.profile_end("crr", frames))
    }
}
