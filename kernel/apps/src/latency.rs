//! Transaction latencies (TCP_RR, TCP_CRR): their sum, a histogram, and
//! a bounded sample for the percentiles.

use alloc::vec::Vec;

/// Latency samples kept; beyond this a uniform sample of them is kept
/// (reservoir sampling), so `net.count` does not bound memory.
const SAMPLES: usize = 16_384;

/// Upper bounds of the round-trip histogram's buckets, in microseconds:
/// where a tail comes from shows in its shape.
pub const BUCKETS_US: [u64; 9] = [25, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000];

pub struct Latencies {
    /// State of the sampling PRNG (xorshift64).
    rng: u64,
    sum: u64,
    count: u32,
    histogram: [u32; BUCKETS_US.len() + 1],
    samples: Vec<u64>,
    /// Latencies offered to the sample: `count`, unless merged from
    /// another's sample.
    offered: u32,
}

/// What the latencies come to, in microseconds.
pub struct Summary {
    pub mean_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Latencies per bucket of [`BUCKETS_US`] (the last: longer).
    pub histogram: [u32; BUCKETS_US.len() + 1],
}

impl Latencies {
    /// Room for `expected` samples (up to the cap) from the start.
    pub fn new(expected: u32) -> Latencies {
        Latencies {
            rng: 0x2545_f491_4f6c_dd1d,
            sum: 0,
            count: 0,
            histogram: [0; BUCKETS_US.len() + 1],
            samples: Vec::with_capacity((expected as usize).min(SAMPLES)),
            offered: 0,
        }
    }

    pub fn record(&mut self, ns: u64) {
        self.sum += ns;
        let bucket = BUCKETS_US.iter().position(|&b| ns <= b * 1000).unwrap_or(BUCKETS_US.len());
        self.histogram[bucket] += 1;
        self.count = self.count.saturating_add(1);
        self.offer(ns);
    }

    /// Adds `other`'s latencies, as if recorded here (several clients'
    /// pooled): the sum, count and histogram exactly; the sample from
    /// `other`'s, which holds all its latencies up to the cap, and beyond
    /// stands for them (so clients of equal counts weigh the same).
    pub fn merge(&mut self, other: &Latencies) {
        self.sum += other.sum;
        self.count = self.count.saturating_add(other.count);
        for (mine, theirs) in self.histogram.iter_mut().zip(other.histogram) {
            *mine += theirs;
        }
        for &ns in &other.samples {
            self.offer(ns);
        }
    }

    /// Keeps `ns` in the sample: always below the cap, beyond it with the
    /// chance of a uniform sample.
    fn offer(&mut self, ns: u64) {
        let seen = self.offered;
        self.offered = self.offered.saturating_add(1);
        if self.samples.len() < SAMPLES {
            self.samples.push(ns);
            return;
        }
        // Keep this sample with probability SAMPLES / (seen + 1).
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let slot = (self.rng % (u64::from(seen) + 1)) as usize;
        if let Some(s) = self.samples.get_mut(slot) {
            *s = ns;
        }
    }

    pub fn summary(mut self) -> Summary {
        self.samples.sort_unstable();
        let n = self.samples.len().max(1);
        let pick = |q: usize| self.samples.get((self.samples.len() * q / 100).min(n - 1)).copied().unwrap_or(0);
        Summary {
            mean_us: self.sum as f64 / f64::from(self.count.max(1)) / 1e3,
            p50_us: pick(50) as f64 / 1e3,
            p99_us: pick(99) as f64 / 1e3,
            histogram: self.histogram,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_buckets_of_known_latencies() {
        let mut l = Latencies::new(100);
        for us in 1..=100u64 {
            l.record(us * 1000);
        }
        let s = l.summary();
        assert_eq!((s.p50_us, s.p99_us, s.mean_us), (51.0, 100.0, 50.5));
        assert_eq!(s.histogram[..3], [25, 25, 50]);
        assert_eq!(s.histogram.iter().sum::<u32>(), 100);
    }

    #[test]
    fn merged_latencies_are_as_if_recorded_in_one() {
        let (mut a, mut b, mut one) = (Latencies::new(50), Latencies::new(50), Latencies::new(100));
        for us in 1..=100u64 {
            if us % 2 == 0 { &mut a } else { &mut b }.record(us * 1000);
            one.record(us * 1000);
        }
        let mut pooled = Latencies::new(100);
        pooled.merge(&a);
        pooled.merge(&b);
        let (p, o) = (pooled.summary(), one.summary());
        assert_eq!((p.p50_us, p.p99_us, p.mean_us, p.histogram), (o.p50_us, o.p99_us, o.mean_us, o.histogram));
        assert_eq!((p.p50_us, p.p99_us), (51.0, 100.0));
    }

    #[test]
    fn merged_samples_beyond_the_cap_weigh_each_source_alike() {
        let (mut fast, mut slow) = (Latencies::new(u32::MAX), Latencies::new(u32::MAX));
        for _ in 0..SAMPLES * 2 {
            fast.record(1000);
            slow.record(3_000_000);
        }
        let mut pooled = Latencies::new(0);
        pooled.merge(&fast);
        pooled.merge(&slow);
        assert_eq!((pooled.count, pooled.samples.len()), (SAMPLES as u32 * 4, SAMPLES));
        let slow_kept = pooled.samples.iter().filter(|s| **s == 3_000_000).count();
        // Half of each, give or take the draw.
        assert!(slow_kept.abs_diff(SAMPLES / 2) < SAMPLES / 20, "{slow_kept}");
        assert_eq!(pooled.summary().mean_us, 1500.5);
    }

    #[test]
    fn beyond_the_cap_a_sample_is_kept() {
        let mut l = Latencies::new(u32::MAX);
        for i in 0..(SAMPLES as u64 * 2) {
            l.record(if i < SAMPLES as u64 { 1000 } else { 2_000_000 });
        }
        assert_eq!(l.samples.len(), SAMPLES);
        let s = l.summary();
        // About half the kept samples are the later, longer ones.
        assert_eq!((s.p99_us, s.histogram[6]), (2000.0, SAMPLES as u32));
        assert!(s.p50_us == 1.0 || s.p50_us == 2000.0);
    }
}
