//! Repeated measurements of one figure (`net.reps`), and how they print.

use alloc::vec::Vec;
use core::fmt;

/// Repeated measurements of one figure.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Spread(Vec<f64>);

impl Spread {
    pub fn push(&mut self, v: f64) {
        self.0.push(v);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The middle value (the mean of the two middle ones for an even
    /// count); NaN without any.
    pub fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }
}

/// `median (min-max)`, or the one value; one decimal unless a precision
/// is given.
impl fmt::Display for Spread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.sorted();
        let prec = f.precision().unwrap_or(1);
        match (v.first(), v.last()) {
            (Some(lo), Some(hi)) if v.len() > 1 => write!(f, "{:.prec$} ({lo:.prec$}-{hi:.prec$})", self.median()),
            _ => write!(f, "{:.prec$}", self.median()),
        }
    }
}

/// The spreads of one TCP_RR configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RrSpread {
    pub rate: Spread,
    pub p50: Spread,
    pub p99: Spread,
    pub mean: Spread,
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;

    fn of(values: &[f64]) -> Spread {
        let mut s = Spread::default();
        values.iter().for_each(|v| s.push(*v));
        s
    }

    #[test]
    fn medians_and_their_spread() {
        assert!(of(&[]).median().is_nan());
        assert_eq!(of(&[3.0]).median(), 3.0);
        assert_eq!(of(&[5.0, 1.0, 3.0]).median(), 3.0);
        assert_eq!(of(&[4.0, 1.0, 3.0, 2.0]).median(), 2.5);
        assert_eq!(format!("{}", of(&[2.0])), "2.0");
        assert_eq!(format!("{}", of(&[5.0, 1.0, 3.0])), "3.0 (1.0-5.0)");
        assert_eq!(format!("{:.0}", of(&[10.4, 9.6])), "10 (10-10)");
    }
}
