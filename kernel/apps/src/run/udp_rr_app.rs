//! `app=udp-rr`: UDP_RR, `net.count` request/response datagrams of
//! `net.msg` bytes with the UDP echo at `net.peer`:`net.port`, `net.reps`
//! times.

use super::{ip, Cost, Run, PROGRESS_EVERY, SECOND, STALL_TIMEOUT};
use crate::udp_rr::{UdpRr, UdpRrReport};
use crate::{Part, Stack};
use alloc::format;
use alloc::string::String;
use figures::Event;

impl<S: Stack> Run<'_, S> {
    pub(super) fn udp_rr_reps(&mut self) -> Result<(), String> {
        (0..self.net.reps).try_for_each(|_| self.udp_rr().map(drop))
    }

    fn udp_rr(&mut self) -> Result<UdpRrReport, String> {
        let (peer, port, count, msg) = (self.peer()?, self.net.port, self.net.count, self.net.msg as usize);
        self.settle();
        log::info!("udp-rr: {count} datagrams of {msg} bytes with {}:{port}", ip(peer));
        let before = self.frames();
        let local = self.local_port();
        let mut rr = UdpRr::start(self.stack.sockets(), peer, port, count, msg, local)?;
        let cost = match self.drive_udp_rr(&mut rr) {
            Ok(cost) => cost,
            Err(e) => {
                rr.abandon(self.stack.sockets());
                return Err(e);
            }
        };
        let report = rr.finish(self.stack.sockets());
        let frames = self.frame_share(&before, "udp-rr");
        let path = self.path_label(None, frames);
        let path = path.as_str();
        let l = &report.latency;
        self.print(format_args!(
            "udp-rr: {} transactions in {:.3} s, {:.0}/s over {path}, {} lost, {} late; latency mean {:.1} us, p50 {:.1} us, p99 {:.1} us",
            report.transactions,
            report.seconds,
            report.per_second(),
            report.lost,
            report.stale,
            l.mean_us,
            l.p50_us,
            l.p99_us
        ));
        self.result(&Event::UdpRr {
            path,
            transactions: report.transactions,
            lost: report.lost,
            stale: report.stale,
            seconds: report.seconds,
            per_second: report.per_second(),
            mean_us: l.mean_us,
            p50_us: l.p50_us,
            p99_us: l.p99_us,
            frames,
        });
        self.figure("net.udp_rr", path, report.per_second(), "transactions/s");
        self.figure("net.udp_rr_latency_p50", path, l.p50_us, "us");
        self.figure("net.udp_rr_latency_p99", path, l.p99_us, "us");
        self.figure("net.udp_rr_latency_mean", path, l.mean_us, "us");
        self.figure("net.udp_rr_lost", path, f64::from(report.lost), "datagrams");
        self.cost_figures(path, &cost);
        Ok(report)
    }

    /// Runs `rr` to its end: bounded by the stall timeout and by its own
    /// loss and setup budgets; its cost.
    fn drive_udp_rr(&mut self, rr: &mut UdpRr) -> Result<Cost, String> {
        let mut next_report = self.now() + PROGRESS_EVERY;
        let mut last_progress = (self.now(), 0);
        let frames = self.profile_start();
        while !rr.done() {
            self.check_stop()?;
            let polled = self.stack.step();
            let now = self.now();
            let moved = rr.service(self.stack.sockets(), now)?;
            let after = self.now();
            self.stack.profile().add(Part::App, after.saturating_sub(now));
            let (done, count) = rr.progress();
            if done != last_progress.1 {
                last_progress = (after, done);
            } else if after.saturating_sub(last_progress.0) > STALL_TIMEOUT {
                return Err(format!("udp-rr: no answer for {} s ({done} of {count} done)", STALL_TIMEOUT / SECOND));
            }
            if after > next_report {
                next_report += PROGRESS_EVERY;
                log::info!("udp-rr: {done} of {count} transactions, {} lost", rr.lost);
                self.result(&Event::<&str>::Progress {
                    app: "udp-rr",
                    done: u64::from(done),
                    total: u64::from(count),
                    unit: "transactions",
                });
            }
            if !polled && !moved {
                self.stack.wait();
            }
        }
        Ok(self.profile_end("udp-rr", frames))
    }
}
