//! Offsets in `struct shared_info` / `struct vcpu_info` (x86_64, from
//! `public/xen.h` and `arch-x86/xen.h`), and the pvclock arithmetic of
//! `struct vcpu_time_info`.

pub const MAX_VIRT_CPUS: usize = 32;
pub const VCPU_INFO_SIZE: usize = 64;

pub mod vcpu_info {
    pub const UPCALL_PENDING: usize = 0;
    pub const UPCALL_MASK: usize = 1;
    pub const PENDING_SEL: usize = 8;
    /// `struct vcpu_time_info`, 32 bytes.
    pub const TIME: usize = 32;
}

pub mod time {
    pub const VERSION: usize = 0;
    pub const TSC_TIMESTAMP: usize = 8;
    pub const SYSTEM_TIME: usize = 16;
    pub const TSC_TO_SYSTEM_MUL: usize = 24;
    pub const TSC_SHIFT: usize = 28;
}

/// `evtchn_pending[64]`, then `evtchn_mask[64]` (u64 words on x86_64).
pub const EVTCHN_PENDING: usize = MAX_VIRT_CPUS * VCPU_INFO_SIZE;
pub const EVTCHN_MASK: usize = EVTCHN_PENDING + 64 * 8;
/// 2-level event channels: 64 words of 64 bits.
pub const EVTCHN_2L_PORTS: u32 = 64 * 64;

/// One consistent snapshot of `vcpu_time_info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeInfo {
    pub tsc_timestamp: u64,
    pub system_time: u64,
    pub tsc_to_system_mul: u32,
    pub tsc_shift: i8,
}

impl TimeInfo {
    /// Xen system time (ns) at TSC value `tsc` (Xen `public/xen.h`:
    /// ((tsc - tsc_timestamp) << / >> shift) * mul >> 32, plus system_time).
    pub fn system_time_at(&self, tsc: u64) -> u64 {
        let delta = tsc.wrapping_sub(self.tsc_timestamp) as i64;
        let scaled = |d: u64| -> u64 {
            let shifted = if self.tsc_shift >= 0 { d << self.tsc_shift } else { d >> -self.tsc_shift };
            ((u128::from(shifted) * u128::from(self.tsc_to_system_mul)) >> 32) as u64
        };
        // A TSC read before tsc_timestamp (e.g. the boot entry) goes back.
        if delta >= 0 {
            self.system_time.wrapping_add(scaled(delta as u64))
        } else {
            self.system_time.wrapping_sub(scaled(delta.unsigned_abs()))
        }
    }

    /// TSC ticks per second implied by the scale factors.
    pub fn tsc_hz(&self) -> u64 {
        if self.tsc_to_system_mul == 0 {
            return 0;
        }
        let hz = (1_000_000_000u128 << 32) / u128::from(self.tsc_to_system_mul);
        let hz = if self.tsc_shift >= 0 { hz >> self.tsc_shift } else { hz << -self.tsc_shift };
        hz as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_like_the_header_formula() {
        // 2 GHz TSC: mul = 2^31 (0.5 ns per tick), shift 0.
        let t = TimeInfo { tsc_timestamp: 1000, system_time: 5_000, tsc_to_system_mul: 1 << 31, tsc_shift: 0 };
        assert_eq!(t.system_time_at(1000), 5_000);
        assert_eq!(t.system_time_at(3000), 6_000);
        assert_eq!(t.system_time_at(0), 4_500);
        assert_eq!(t.tsc_hz(), 2_000_000_000);
        // Same rate with shift -1 and mul 2^32 - 1 ... approximately 1 GHz/2.
        let t = TimeInfo { tsc_shift: -1, tsc_to_system_mul: u32::MAX, ..t };
        assert_eq!(t.system_time_at(1000 + 4_000_000), 5_000 + 1_999_999);
        assert!((t.tsc_hz() as i64 - 2_000_000_000).abs() < 2);
    }
}
