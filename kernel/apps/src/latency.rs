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
        }
    }

    pub fn record(&mut self, ns: u64) {
        self.sum += ns;
        let bucket = BUCKETS_US.iter().position(|&b| ns <= b * 1000).unwrap_or(BUCKETS_US.len());
        self.histogram[bucket] += 1;
        let seen = self.count;
        self.count = self.count.saturating_add(1);
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
