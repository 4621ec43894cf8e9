//! Where a network measurement's time goes, in this guest: device
//! housekeeping, the stack's poll, the application, and idle (blocked in
//! the hypervisor, waiting for an event). Printed with each measurement,
//! as a line for people and as `BENCH` figures for the harness.

use alloc::string::String;
use alloc::vec::Vec;

/// What time is charged to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Service,
    Poll,
    App,
    Idle,
}

/// Time and calls per [`Part`] since the last [`Profile::take`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    ns: [u64; 4],
    calls: [u64; 4],
}

/// What a [`Profile`] gathered until it was taken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Nanoseconds per [`Part`], in its order.
    pub ns: [u64; 4],
    /// Calls (waits, for idle) per [`Part`].
    pub calls: [u64; 4],
}

impl Profile {
    /// Charges `ns` (one call) to `part`.
    pub fn add(&mut self, part: Part, ns: u64) {
        let i = part as usize;
        self.ns[i] = self.ns[i].saturating_add(ns);
        self.calls[i] += 1;
    }

    /// The totals; they start again from zero.
    pub fn take(&mut self) -> Totals {
        let Profile { ns, calls } = core::mem::take(self);
        Totals { ns, calls }
    }

    /// The totals, as one line; they start again from zero.
    pub fn take_line(&mut self) -> String {
        self.take().line()
    }
}

impl Totals {
    pub fn ns(&self, part: Part) -> u64 {
        self.ns[part as usize]
    }

    pub fn calls(&self, part: Part) -> u64 {
        self.calls[part as usize]
    }

    /// All the time profiled.
    pub fn total_ns(&self) -> u64 {
        self.ns.iter().fold(0, |a, n| a.saturating_add(*n))
    }

    /// The time the guest worked (not idle): service, poll, application.
    pub fn busy_ns(&self) -> u64 {
        [Part::Service, Part::Poll, Part::App].iter().fold(0, |a, p| a.saturating_add(self.ns(*p)))
    }

    /// `part`'s share of the time profiled, in %; 0 when none was.
    pub fn share(&self, part: Part) -> f64 {
        match self.total_ns() {
            0 => 0.0,
            total => 100.0 * self.ns(part) as f64 / total as f64,
        }
    }

    /// For people; nothing parses it (the harness reads [`Totals::figures`]).
    pub fn line(&self) -> String {
        alloc::format!(
            "time: device service {:.1}% ({} calls), stack poll {:.1}% ({}), application {:.1}% ({}), idle {:.1}% ({} waits)",
            self.share(Part::Service),
            self.calls(Part::Service),
            self.share(Part::Poll),
            self.calls(Part::Poll),
            self.share(Part::App),
            self.calls(Part::App),
            self.share(Part::Idle),
            self.calls(Part::Idle)
        )
    }

    /// The figures of a measurement's time, `frames` being those the
    /// device moved meanwhile (None: it does not count them), as (name,
    /// value, unit): each part's
    /// share (left out when no time was profiled), and the busy time and
    /// device service calls per frame (left out when no frame moved).
    pub fn figures(&self, frames: Option<u64>) -> Vec<(&'static str, f64, &'static str)> {
        let mut figures = Vec::new();
        if self.total_ns() > 0 {
            figures.extend([
                ("net.time_service", self.share(Part::Service), "%"),
                ("net.time_poll", self.share(Part::Poll), "%"),
                ("net.time_app", self.share(Part::App), "%"),
                ("net.time_idle", self.share(Part::Idle), "%"),
            ]);
        }
        if let Some(frames) = frames.filter(|f| *f > 0) {
            figures.push(("net.busy_per_frame", self.busy_ns() as f64 / frames as f64, "ns/frame"));
            figures.push(("net.service_calls_per_frame", self.calls(Part::Service) as f64 / frames as f64, "calls/frame"));
        }
        figures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Profile {
        let mut p = Profile::default();
        p.add(Part::Service, 100);
        p.add(Part::Poll, 300);
        p.add(Part::App, 100);
        p.add(Part::Idle, 500);
        p.add(Part::Idle, 0);
        p
    }

    #[test]
    fn shares_add_up_and_taking_resets() {
        let mut p = sample();
        assert_eq!(
            p.take_line(),
            "time: device service 10.0% (1 calls), stack poll 30.0% (1), application 10.0% (1), idle 50.0% (2 waits)"
        );
        assert_eq!(p, Profile::default());
        assert!(p.take_line().contains("device service 0.0% (0 calls)"));
    }

    #[test]
    fn the_figures_are_the_shares_and_the_busy_time_per_frame() {
        let mut p = sample();
        p.add(Part::Service, 100);
        let t = p.take();
        assert_eq!(p, Profile::default(), "taking resets");
        assert_eq!((t.total_ns(), t.busy_ns(), t.calls(Part::Service)), (1100, 600, 2));
        let figures = t.figures(Some(4));
        let names: Vec<&str> = figures.iter().map(|f| f.0).collect();
        assert_eq!(
            names,
            [
                "net.time_service",
                "net.time_poll",
                "net.time_app",
                "net.time_idle",
                "net.busy_per_frame",
                "net.service_calls_per_frame"
            ]
        );
        let value = |name: &str| figures.iter().find(|f| f.0 == name).map(|f| (f.1, f.2)).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(value("net.time_service").0, 100.0 * 200.0 / 1100.0));
        assert!(close(value("net.time_idle").0, 100.0 * 500.0 / 1100.0));
        assert!(close(figures[..4].iter().map(|f| f.1).sum::<f64>(), 100.0));
        assert!(figures[..4].iter().all(|f| f.2 == "%"));
        assert_eq!(value("net.busy_per_frame"), (150.0, "ns/frame"), "(200 + 300 + 100) ns / 4 frames");
        assert_eq!(value("net.service_calls_per_frame"), (0.5, "calls/frame"));
    }

    #[test]
    fn no_frame_or_no_time_leaves_those_figures_out() {
        let t = sample().take();
        for frames in [None, Some(0)] {
            let names: Vec<&str> = t.figures(frames).iter().map(|f| f.0).collect();
            assert_eq!(names, ["net.time_service", "net.time_poll", "net.time_app", "net.time_idle"], "{frames:?}");
        }
        assert!(Totals::default().figures(None).is_empty());
        let idle_only = Totals { ns: [0, 0, 0, 7], calls: [0, 0, 0, 1] };
        let figures = idle_only.figures(Some(2));
        assert_eq!(figures.iter().find(|f| f.0 == "net.busy_per_frame").map(|f| f.1), Some(0.0));
        assert!(figures.iter().all(|f| f.1.is_finite()));
    }
}
