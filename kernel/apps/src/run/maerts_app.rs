//! `app=maerts`: TCP_MAERTS, the stream from the source at
//! `net.peer`:`net.source` to this client, `net.reps` times.

use super::{ip, Run};
use crate::maerts::{Maerts, MaertsReport};
use crate::pattern::CheckKind;
use crate::Stack;
use alloc::format;
use alloc::string::String;
use cohort_boot::cmdline::StreamCheck;
use figures::{Event, Frames};

impl<S: Stack> Run<'_, S> {
    pub(super) fn maerts_reps(&mut self) -> Result<(), String> {
        let kind = match self.net.check {
            StreamCheck::Sha256 => CheckKind::Sha256,
            StreamCheck::Fnv => CheckKind::Fast,
            StreamCheck::Count => CheckKind::Count,
        };
        (0..self.net.reps).try_for_each(|_| self.maerts(kind).map(drop))
    }

    /// One stream of `net.bytes` from the source.
    fn maerts(&mut self, kind: CheckKind) -> Result<MaertsReport, String> {
        let (peer, port, bytes) = (self.peer()?, self.net.source, self.net.bytes);
        self.settle();
        log::info!("maerts: {bytes} bytes from the source at {}:{port}", ip(peer));
        let before = self.frames();
        let start = |s: &mut S, local| {
            let (iface, sockets) = s.parts();
            Maerts::start(iface, sockets, peer, port, bytes, kind, local)
        };
        let (m, cost) = self.drive("maerts", start, |_, _, _| {})?;
        let report = m.finish(self.stack.sockets());
        let frames = self.frame_share(&before, "maerts");
        let path = self.path_label(None, frames);
        self.cost_figures(&path, &cost);
        self.maerts_report(report, &path, frames)
    }

    /// Prints a MAERTS run's outcome; an error if the source sent other
    /// bytes.
    pub(crate) fn maerts_report(
        &mut self,
        report: MaertsReport,
        path: &str,
        frames: Option<Frames>,
    ) -> Result<MaertsReport, String> {
        self.print(format_args!(
            "maerts: {} bytes in {:.3} s, {:.2} Mbit/s over {path}; the source sent {} bytes, {} {} ({})",
            report.bytes,
            report.seconds,
            report.mbit_per_s(),
            report.source_bytes,
            report.check_name(),
            report.source_digest,
            if report.matches() { "match" } else { "MISMATCH" }
        ));
        self.result(&Event::Maerts {
            path,
            bytes: report.bytes,
            seconds: report.seconds,
            mbit_per_s: report.mbit_per_s(),
            check: report.check_name(),
            digest: &report.digest,
            source_bytes: report.source_bytes,
            source_digest: &report.source_digest,
            matched: report.matches(),
            frames,
        });
        self.figure("net.tcp_maerts", path, report.mbit_per_s(), "Mbit/s");
        if !report.matches() {
            return Err(format!(
                "received {} bytes with {} {}; the source says {} with {}",
                report.bytes,
                report.check_name(),
                report.digest,
                report.source_bytes,
                report.source_digest
            ));
        }
        Ok(report)
    }
}
