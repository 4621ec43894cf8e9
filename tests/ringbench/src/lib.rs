//! The host ring benchmark (issue 16, "Limits"): the `channel` crate's
//! ring, run by its real [`Channel`](channel::Channel) code between two
//! pinned host threads over shared memory ([`host`]), set beside the
//! copying-alone bound (two `memcpy`s through a shared buffer, see
//! [`transport::memcpy_pair`]) and `rtrb`'s SPSC ring, in one run, with the
//! same frame sizes and the same buffer size. Every frame is checked on
//! the receiving side ([`run::transfer`]): a broken transfer gives an
//! error, never a figure.
//!
//! Figures are `BENCH` lines (`kernel/figures`' schema), path `host`, clock
//! `wall`, one per repetition:
//!
//! - `ring.<transport>.throughput.<bytes>` (Gbit/s) and
//!   `ring.<transport>.frames.<bytes>` (frames/s), for `channel`,
//!   `channel_atomic`, `memcpy` and `rtrb`;
//! - `ring.channel_vs_memcpy.<bytes>` and `ring.channel_vs_rtrb.<bytes>`
//!   (ratio): the channel's throughput over the other's in the same
//!   repetition (the transports of a repetition run back to back, in an
//!   order that rotates from one repetition to the next);
//! - the same under `ring.samecore.` with both threads on one core.

pub mod host;
pub mod run;
pub mod transport;

use serde::Serialize;

use run::{Check, Outcome, Placement};
use transport::Kind;

/// The frame sizes measured unless told otherwise: small, 1500 bytes, the
/// channel's default largest frame (`ring::ETH_FRAME`, 1514: 1500 bytes of
/// payload and the Ethernet header), jumbo.
pub const SIZES: [usize; 4] = [64, 1500, channel::ring::ETH_FRAME, 9000];
/// The channel's default ring (`Config::default().ring_pages`): 16 pages.
pub const RING_BYTES: usize = 16 * xen_proto::iface::PAGE_SIZE;

/// One `BENCH` figure (the keys in `figures::Figure`'s order).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figure {
    pub name: String,
    pub path: &'static str,
    pub value: f64,
    pub unit: &'static str,
    pub clock: &'static str,
}

impl Figure {
    fn new(name: String, value: f64, unit: &'static str) -> Self {
        // Thousandths, as the kernel writes them.
        Figure { name, path: "host", value: (value * 1000.0).round() / 1000.0, unit, clock: "wall" }
    }

    /// The JSON object.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `BENCH {...}`.
    pub fn line(&self) -> String {
        format!("{}{}", figures::PREFIX, self.json())
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub sizes: Vec<usize>,
    pub kinds: Vec<Kind>,
    pub reps: usize,
    /// Bytes moved per transfer (each transport, size and repetition).
    /// `ringbench` moves 32 MiB: milliseconds a transfer, long enough for
    /// the ring's steady state (it is 64 KiB), short enough that on a
    /// shared 2-core host most transfers run without another task taking
    /// a core (in a check with 1514-byte frames, transfers of 256 MiB were
    /// preempted about 60 times each and ran 2.7x slower, the channel and
    /// memcpy alike; the summary counts preemptions).
    pub bytes: u64,
    pub ring_bytes: usize,
    /// The two threads on two cores (`cross`) and on one (`same`).
    pub cross: Option<Placement>,
    pub same: Option<Placement>,
}

/// The two cores the threads are pinned to: the first two the process may
/// run on (`None` for both when it may run on one only).
pub fn cores() -> (Option<usize>, Option<usize>) {
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    match ids.as_slice() {
        [a, b, ..] => (Some(a.id), Some(b.id)),
        [a] => (Some(a.id), None),
        [] => (None, None),
    }
}

/// One transfer of `kind`: `bytes` (at least 1000 frames) in frames of
/// `len`.
pub fn measure(kind: Kind, plan: &Plan, len: usize, bytes: u64, at: Placement, check: Check) -> Result<Outcome, String> {
    let (tx, rx) = transport::pair(kind, plan.ring_bytes, len)?;
    let frames = (bytes / len as u64).max(1000);
    run::transfer(tx, rx, len, frames, at, check).map_err(|e| format!("{} with {len}-byte frames: {e}", kind.name()))
}

/// Median, min and max.
pub fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let n = v.len();
    let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
    (median, v[0], v[n - 1])
}

/// Every transfer of one placement and size, by transport, in run order.
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub runs: Vec<(Kind, Outcome)>,
}

impl Series {
    pub fn of(&self, kind: Kind) -> Vec<Outcome> {
        self.runs.iter().filter(|(k, _)| *k == kind).map(|(_, o)| *o).collect()
    }
}

/// Runs the plan: for each placement and size, a short untimed warm-up of
/// every transport, then `reps` repetitions, each running every transport
/// once (rotating the order). Each figure goes to `emit` as it is
/// measured; progress to `progress`. Returns every outcome by (same core,
/// size).
pub fn run_plan(
    plan: &Plan,
    emit: &mut dyn FnMut(&Figure),
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<(bool, usize, Series)>, String> {
    let mut all = Vec::new();
    let placements = [(false, plan.cross), (true, plan.same)];
    for (same, at) in placements.into_iter().filter_map(|(s, p)| p.map(|p| (s, p))) {
        let prefix = if same { "ring.samecore." } else { "ring." };
        for &len in &plan.sizes {
            for &kind in &plan.kinds {
                measure(kind, plan, len, plan.bytes / 10, at, Check::Stamps)?;
            }
            let mut series = Series::default();
            for rep in 0..plan.reps {
                let n = plan.kinds.len();
                let mut this: Vec<(Kind, Outcome)> = Vec::new();
                for i in 0..n {
                    let kind = plan.kinds[(i + rep) % n];
                    let o = measure(kind, plan, len, plan.bytes, at, Check::Stamps)?;
                    progress(&format!(
                        "{} {len} B rep {}/{}: {} {:.2} Gbit/s, {:.0} frames/s ({} full, {} empty, {} yields, {} preempted)",
                        if same { "same core" } else { "cross core" },
                        rep + 1,
                        plan.reps,
                        kind.name(),
                        o.gbit_per_s(),
                        o.frames_per_s(),
                        o.full,
                        o.empty,
                        o.yields,
                        o.preempted
                    ));
                    emit(&Figure::new(format!("{prefix}{}.throughput.{len}", kind.name()), o.gbit_per_s(), "Gbit/s"));
                    emit(&Figure::new(format!("{prefix}{}.frames.{len}", kind.name()), o.frames_per_s(), "frames/s"));
                    this.push((kind, o));
                }
                let of = |k: Kind| this.iter().find(|(kind, _)| *kind == k).map(|(_, o)| o.gbit_per_s());
                if let Some(ch) = of(Kind::Channel) {
                    for other in [Kind::Memcpy, Kind::Rtrb] {
                        if let Some(v) = of(other) {
                            emit(&Figure::new(format!("{prefix}channel_vs_{}.{len}", other.name()), ch / v, "ratio"));
                        }
                    }
                }
                series.runs.extend(this);
            }
            all.push((same, len, series));
        }
    }
    Ok(all)
}

/// The run's summary, for people: median (min–max) of each transport's
/// Gbit/s and frames/s per size, the channel's ratios, and the waits.
pub fn summary(all: &[(bool, usize, Series)]) -> String {
    let mut s = String::new();
    for (same, len, series) in all {
        let place = if *same { "same core" } else { "cross core" };
        s.push_str(&format!("{place}, {len}-byte frames:\n"));
        let kinds: Vec<Kind> = Kind::ALL.into_iter().filter(|k| !series.of(*k).is_empty()).collect();
        for &k in &kinds {
            let o = series.of(k);
            let (g, glo, ghi) = spread(&o.iter().map(Outcome::gbit_per_s).collect::<Vec<_>>());
            let (f, flo, fhi) = spread(&o.iter().map(Outcome::frames_per_s).collect::<Vec<_>>());
            let per = |x: fn(&Outcome) -> u64| spread(&o.iter().map(|o| x(o) as f64 / o.frames as f64).collect::<Vec<_>>()).0;
            let preempted: u64 = o.iter().map(|o| o.preempted).sum();
            s.push_str(&format!(
                "  {:<15} {g:7.2} Gbit/s ({glo:.2}–{ghi:.2})  {:6.2} Mframes/s ({:.2}–{:.2})  per frame: {:.3} full, {:.3} empty, {:.4} yields; preempted {preempted}x in {} runs\n",
                k.name(),
                f / 1e6,
                flo / 1e6,
                fhi / 1e6,
                per(|o| o.full),
                per(|o| o.empty),
                per(|o| o.yields),
                o.len(),
            ));
        }
        let ch = series.of(Kind::Channel);
        for other in [Kind::Memcpy, Kind::Rtrb] {
            let ot = series.of(other);
            if ch.is_empty() || ch.len() != ot.len() {
                continue;
            }
            let ratios: Vec<f64> = ch.iter().zip(&ot).map(|(a, b)| a.gbit_per_s() / b.gbit_per_s()).collect();
            let (m, lo, hi) = spread(&ratios);
            s.push_str(&format!("  channel / {:<8} {m:.3} ({lo:.3}–{hi:.3}), per repetition\n", other.name()));
        }
    }
    s
}

/// Where a frame's time goes (`--diagnose`; progress and the table go to
/// standard error, no figures): per size, the nanoseconds per frame of
///
/// - every transport on one thread ([`run::one_thread`]): the instructions
///   and one core's cache, no line crossing between cores;
/// - across the two cores: the channel, the memcpy stream, and the memcpy
///   stream with the channel's index traffic (`memcpy_eager`, see
///   [`transport::memcpy_pair`]).
///
/// If `memcpy_eager` across cores lands near the channel while the
/// channel's one-thread cost is small, the gap to memcpy is the index
/// traffic (reading the peer's index on every call, publishing on every
/// frame, a `SeqCst` fence and a read of the peer's event index per
/// frame), not the ring's arithmetic or its copies.
pub fn diagnose(plan: &Plan, progress: &mut dyn FnMut(&str)) -> Result<String, String> {
    let cross = plan.cross.ok_or("--diagnose needs two cores")?;
    let local = [Kind::Channel, Kind::ChannelAtomic, Kind::Memcpy, Kind::Rtrb, Kind::MemcpyEager];
    let remote = [Kind::Channel, Kind::Memcpy, Kind::MemcpyEager];
    let mut s = String::from("ns per frame, median (min–max):\n");
    for &len in &plan.sizes {
        let mut one: Vec<Vec<f64>> = vec![Vec::new(); local.len()];
        let mut two: Vec<Vec<f64>> = vec![Vec::new(); remote.len()];
        let frames = (plan.bytes / len as u64).max(1000);
        for rep in 0..plan.reps {
            for (i, &kind) in local.iter().enumerate() {
                let (mut tx, mut rx) = transport::pair(kind, plan.ring_bytes, len)?;
                let o = run::one_thread(&mut *tx, &mut *rx, len, frames)?;
                one[i].push(o.elapsed.as_nanos() as f64 / frames as f64);
            }
            for i in 0..remote.len() {
                let i = (i + rep) % remote.len();
                let o = measure(remote[i], plan, len, plan.bytes, cross, Check::Stamps)?;
                two[i].push(o.elapsed.as_nanos() as f64 / o.frames as f64);
            }
            progress(&format!("diagnosis {len} B rep {}/{}", rep + 1, plan.reps));
        }
        s.push_str(&format!("  {len}-byte frames\n"));
        let mut row = |label: &str, kind: Kind, v: &[f64]| {
            let (m, lo, hi) = spread(v);
            s.push_str(&format!("    {label:<10} {:<15} {m:8.1} ({lo:.1}–{hi:.1})\n", kind.name()));
        };
        for (i, &k) in local.iter().enumerate() {
            row("one thread", k, &one[i]);
        }
        for (i, &k) in remote.iter().enumerate() {
            row("two cores", k, &two[i]);
        }
    }
    Ok(s)
}
