//! Where a network measurement's time goes, in this guest: device
//! housekeeping, the stack's poll, the application, and idle (blocked in
//! the hypervisor, waiting for an event). Printed with each measurement.

use alloc::string::String;

/// What time is charged to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Service,
    Poll,
    App,
    Idle,
}

/// Time and calls per [`Part`] since the last [`Profile::take_line`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    ns: [u64; 4],
    calls: [u64; 4],
}

impl Profile {
    /// Charges `ns` (one call) to `part`.
    pub fn add(&mut self, part: Part, ns: u64) {
        let i = part as usize;
        self.ns[i] = self.ns[i].saturating_add(ns);
        self.calls[i] += 1;
    }

    /// The totals, as one line; they start again from zero.
    pub fn take_line(&mut self) -> String {
        let Profile { ns, calls } = core::mem::take(self);
        let total = ns.iter().sum::<u64>().max(1);
        let pct = |ns: u64| 100.0 * ns as f64 / total as f64;
        alloc::format!(
            "time: device service {:.1}% ({} calls), stack poll {:.1}% ({}), application {:.1}% ({}), idle {:.1}% ({} waits)",
            pct(ns[0]),
            calls[0],
            pct(ns[1]),
            calls[1],
            pct(ns[2]),
            calls[2],
            pct(ns[3]),
            calls[3]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_taking_resets() {
        let mut p = Profile::default();
        p.add(Part::Service, 100);
        p.add(Part::Poll, 300);
        p.add(Part::App, 100);
        p.add(Part::Idle, 500);
        p.add(Part::Idle, 0);
        assert_eq!(
            p.take_line(),
            "time: device service 10.0% (1 calls), stack poll 30.0% (1), application 10.0% (1), idle 50.0% (2 waits)"
        );
        assert_eq!(p, Profile::default());
        assert!(p.take_line().contains("device service 0.0% (0 calls)"));
    }
}
