//! Index arithmetic for the xenstore shared page
//! (`struct xenstore_domain_interface`).
//!
//! The page holds two 1024-byte byte rings (requests and responses) with
//! free-running `u32` producer/consumer indices; positions in the ring are
//! the indices masked by the ring size. The indices live in memory the
//! peer can scribble on, so every snapshot is validated before use: if
//! `prod - cons` (wrapping) exceeds the ring size, the peer corrupted the
//! ring and nothing derived from those indices can be trusted.
//!
//! This module is pure arithmetic; the transport does the (volatile)
//! memory accesses and barriers.

use core::ops::Range;

use crate::error::Error;

/// Size of each byte ring (`XENSTORE_RING_SIZE`).
pub const XENSTORE_RING_SIZE: usize = 1024;

/// Byte offsets of the fields of `struct xenstore_domain_interface`.
pub mod offset {
    /// `char req[1024]`: guest-to-daemon ring.
    pub const REQ: usize = 0;
    /// `char rsp[1024]`: daemon-to-guest ring.
    pub const RSP: usize = 1024;
    /// `req_cons` (written by the daemon).
    pub const REQ_CONS: usize = 2048;
    /// `req_prod` (written by the guest).
    pub const REQ_PROD: usize = 2052;
    /// `rsp_cons` (written by the guest).
    pub const RSP_CONS: usize = 2056;
    /// `rsp_prod` (written by the daemon).
    pub const RSP_PROD: usize = 2060;
    /// `server_features` bitmap.
    pub const SERVER_FEATURES: usize = 2064;
    /// `connection` state.
    pub const CONNECTION: usize = 2068;
    /// `error` code.
    pub const ERROR: usize = 2072;
    /// Total size of the structure.
    pub const SIZE: usize = 2076;
}

/// `XENSTORE_SERVER_FEATURE_RECONNECTION`: the ring can be reset.
pub const SERVER_FEATURE_RECONNECTION: u32 = 1;
/// `XENSTORE_SERVER_FEATURE_ERROR`: the `error` field is meaningful.
pub const SERVER_FEATURE_ERROR: u32 = 2;

/// `XENSTORE_CONNECTED`: steady state.
pub const CONNECTED: u32 = 0;
/// `XENSTORE_RECONNECT`: a reconnection is in progress.
pub const RECONNECT: u32 = 1;

/// `XENSTORE_ERROR_NONE`.
pub const ERROR_NONE: u32 = 0;
/// `XENSTORE_ERROR_COMM`: communication problem.
pub const ERROR_COMM: u32 = 1;
/// `XENSTORE_ERROR_RINGIDX`: invalid ring index.
pub const ERROR_RINGIDX: u32 = 2;
/// `XENSTORE_ERROR_PROTO`: protocol violation (payload too long).
pub const ERROR_PROTO: u32 = 3;

/// Position of a free-running index within the ring
/// (`MASK_XENSTORE_IDX`).
pub const fn mask(idx: u32) -> usize {
    (idx as usize) & (XENSTORE_RING_SIZE - 1)
}

/// Validates a `(cons, prod)` snapshot and returns the number of bytes
/// in flight (`prod - cons`, wrapping).
pub fn check(cons: u32, prod: u32) -> Result<usize, Error> {
    let used = prod.wrapping_sub(cons) as usize;
    if used > XENSTORE_RING_SIZE {
        return Err(Error::RingCorrupted { cons, prod });
    }
    Ok(used)
}

/// Bytes available to the consumer.
pub fn readable(cons: u32, prod: u32) -> Result<usize, Error> {
    check(cons, prod)
}

/// Free space available to the producer.
pub fn writable(cons: u32, prod: u32) -> Result<usize, Error> {
    Ok(XENSTORE_RING_SIZE - check(cons, prod)?)
}

/// The largest contiguous range of ring bytes the consumer can read now
/// (stops at the end of the ring; read again after advancing for the
/// wrapped part). Empty when nothing is readable.
pub fn read_chunk(cons: u32, prod: u32) -> Result<Range<usize>, Error> {
    let avail = readable(cons, prod)?;
    let start = mask(cons);
    let len = avail.min(XENSTORE_RING_SIZE - start);
    Ok(start..start + len)
}

/// The largest contiguous range of ring bytes the producer can fill now.
/// Empty when the ring is full.
pub fn write_chunk(cons: u32, prod: u32) -> Result<Range<usize>, Error> {
    let free = writable(cons, prod)?;
    let start = mask(prod);
    let len = free.min(XENSTORE_RING_SIZE - start);
    Ok(start..start + len)
}

/// Advances a free-running index by `n` bytes (wrapping at 2^32).
///
/// `n` is a chunk length, so at most [`XENSTORE_RING_SIZE`]; larger values
/// are still reduced modulo 2^32 rather than panicking.
pub fn advance(idx: u32, n: usize) -> u32 {
    idx.wrapping_add(n as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_struct() {
        // req[1024] + rsp[1024] then seven u32 fields, no padding.
        assert_eq!(offset::RSP, offset::REQ + XENSTORE_RING_SIZE);
        assert_eq!(offset::REQ_CONS, offset::RSP + XENSTORE_RING_SIZE);
        let u32s = [
            offset::REQ_CONS,
            offset::REQ_PROD,
            offset::RSP_CONS,
            offset::RSP_PROD,
            offset::SERVER_FEATURES,
            offset::CONNECTION,
            offset::ERROR,
            offset::SIZE,
        ];
        for w in u32s.windows(2) {
            assert_eq!(w[1], w[0] + 4);
        }
        assert_eq!(offset::ERROR, 2072);
    }

    #[test]
    fn empty_full_partial() {
        assert_eq!(readable(5, 5), Ok(0));
        assert_eq!(writable(5, 5), Ok(1024));
        assert_eq!(readable(0, 1024), Ok(1024));
        assert_eq!(writable(0, 1024), Ok(0));
        assert_eq!(write_chunk(0, 1024), Ok(0..0));
        assert_eq!(read_chunk(7, 7), Ok(7..7));
        assert_eq!(readable(10, 110), Ok(100));
        assert_eq!(read_chunk(10, 110), Ok(10..110));
        // Free space 924 but only 914 bytes before the end of the ring.
        assert_eq!(write_chunk(10, 110), Ok(110..1024));
    }

    #[test]
    fn chunks_stop_at_ring_end() {
        // 100 bytes readable starting 20 before the end: 20 now, 80 later.
        assert_eq!(read_chunk(1004, 1104), Ok(1004..1024));
        assert_eq!(read_chunk(1024, 1104), Ok(0..80));
        // Producer at 1000, consumer at 900: free 924, contiguous 24.
        assert_eq!(write_chunk(900, 1000), Ok(1000..1024));
        assert_eq!(write_chunk(900, 1024), Ok(0..900));
    }

    #[test]
    fn u32_wraparound() {
        let cons = u32::MAX - 9; // mask = 1014
        let prod = 20u32; // 30 bytes past cons after wrapping
        assert_eq!(readable(cons, prod), Ok(30));
        assert_eq!(writable(cons, prod), Ok(994));
        assert_eq!(read_chunk(cons, prod), Ok(1014..1024));
        let cons2 = advance(cons, 10);
        assert_eq!(cons2, 0);
        assert_eq!(read_chunk(cons2, prod), Ok(0..20));
        assert_eq!(advance(cons2, 20), prod);
        assert_eq!(write_chunk(cons, prod), Ok(20..1014));
        assert_eq!(advance(u32::MAX, 1), 0);
    }

    #[test]
    fn corrupted_indices() {
        assert_eq!(readable(0, 1025), Err(Error::RingCorrupted { cons: 0, prod: 1025 }));
        // cons ahead of prod looks like ~4 GiB in flight.
        assert_eq!(writable(10, 5), Err(Error::RingCorrupted { cons: 10, prod: 5 }));
        assert!(read_chunk(u32::MAX, 1024).is_err());
        assert!(write_chunk(0, u32::MAX).is_err());
        assert_eq!(check(u32::MAX, 1023), Ok(1024));
    }

    #[test]
    fn mask_values() {
        assert_eq!(mask(0), 0);
        assert_eq!(mask(1023), 1023);
        assert_eq!(mask(1024), 0);
        assert_eq!(mask(u32::MAX), 1023);
    }
}
