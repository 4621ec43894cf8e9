//! Byte transport over the xenstore shared page
//! (`struct xenstore_domain_interface`).
//!
//! We produce into `req` and consume from `rsp`. Each call snapshots the
//! peer's index once, validates the pair with [`ring::check`] and derives
//! every offset from that snapshot, so a peer changing indices under us can
//! make us read garbage bytes (caught by the decoder) but never read or
//! write outside the ring.

use core::sync::atomic::{fence, Ordering};

use xenstore_wire::ring::{self, offset};

use crate::error::Error;
use crate::iface::{SharedPage, XenstoreRing};

/// The guest side of the xenstore ring.
pub struct RingTransport<R: XenstoreRing> {
    ring: R,
}

impl<R: XenstoreRing> RingTransport<R> {
    /// Wraps a ring; no I/O happens until the first write or read.
    pub fn new(ring: R) -> Self {
        RingTransport { ring }
    }

    /// The underlying ring.
    pub fn ring(&self) -> &R {
        &self.ring
    }

    /// The underlying ring, mutably (e.g. for test knobs).
    pub fn ring_mut(&mut self) -> &mut R {
        &mut self.ring
    }

    /// Gives the ring back.
    pub fn into_inner(self) -> R {
        self.ring
    }

    /// Copies as much of `data` into the request ring as fits and returns
    /// how many bytes went in. Notifies xenstored if any did.
    pub fn write_some(&mut self, data: &[u8]) -> Result<usize, Error> {
        let page = self.ring.page();
        // Both indices are read once; the pair is validated before any
        // offset is derived from it.
        let cons = page.read_u32(offset::REQ_CONS);
        let mut prod = page.read_u32(offset::REQ_PROD);
        ring::check(cons, prod).map_err(Error::Fatal)?;
        // Acquire: xenstored finished reading the bytes up to req_cons
        // before we overwrite them.
        fence(Ordering::Acquire);
        let mut done = 0;
        while done < data.len() {
            let chunk = ring::write_chunk(cons, prod).map_err(Error::Fatal)?;
            if chunk.is_empty() {
                break;
            }
            let n = chunk.len().min(data.len() - done);
            let src = data.get(done..done + n).unwrap_or_default();
            page.write_bytes(offset::REQ + chunk.start, src);
            done += n;
            prod = ring::advance(prod, n);
        }
        if done == 0 {
            return Ok(0);
        }
        // Release: the request bytes are visible before req_prod moves.
        fence(Ordering::Release);
        page.write_u32(offset::REQ_PROD, prod);
        self.ring.notify()?;
        Ok(done)
    }

    /// Copies available response bytes into `buf` and returns how many.
    /// Notifies xenstored if any were consumed (it may be waiting for
    /// space).
    pub fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let page = self.ring.page();
        let mut cons = page.read_u32(offset::RSP_CONS);
        let prod = page.read_u32(offset::RSP_PROD);
        ring::check(cons, prod).map_err(Error::Fatal)?;
        // Acquire: see the response bytes up to rsp_prod before reading
        // them.
        fence(Ordering::Acquire);
        let mut done = 0;
        while done < buf.len() {
            let chunk = ring::read_chunk(cons, prod).map_err(Error::Fatal)?;
            if chunk.is_empty() {
                break;
            }
            let n = chunk.len().min(buf.len() - done);
            if let Some(dst) = buf.get_mut(done..done + n) {
                page.read_bytes(offset::RSP + chunk.start, dst);
            }
            done += n;
            cons = ring::advance(cons, n);
        }
        if done == 0 {
            return Ok(0);
        }
        // Release: our reads of the response bytes complete before
        // rsp_cons hands the space back to xenstored.
        fence(Ordering::Release);
        page.write_u32(offset::RSP_CONS, cons);
        self.ring.notify()?;
        Ok(done)
    }

    /// Waits for xenstored to make progress, at most `timeout_ns`.
    pub fn wait(&mut self, timeout_ns: u64) -> bool {
        self.ring.wait(timeout_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{drain_requests, FakePage};
    use core::cell::Cell;
    use std::vec::Vec;

    struct FakeRing {
        page: FakePage,
        notifies: Cell<u32>,
    }

    impl XenstoreRing for FakeRing {
        type Page = FakePage;
        fn page(&self) -> &FakePage {
            &self.page
        }
        fn notify(&mut self) -> Result<(), crate::iface::XenError> {
            self.notifies.set(self.notifies.get() + 1);
            Ok(())
        }
        fn wait(&mut self, _: u64) -> bool {
            false
        }
        fn now_ns(&self) -> u64 {
            0
        }
    }

    fn transport() -> RingTransport<FakeRing> {
        RingTransport::new(FakeRing { page: FakePage::new(), notifies: Cell::new(0) })
    }

    /// Plays the daemon: appends `data` to the response ring.
    fn push_response(page: &FakePage, data: &[u8]) {
        let mut prod = page.read_u32(offset::RSP_PROD);
        for &b in data {
            page.write_bytes(offset::RSP + ring::mask(prod), &[b]);
            prod = prod.wrapping_add(1);
        }
        page.write_u32(offset::RSP_PROD, prod);
    }

    #[test]
    fn write_fills_ring_and_wraps() {
        let mut t = transport();
        // Start near the end of the ring and near u32 wrap-around.
        let start = u32::MAX - 5;
        t.ring().page.write_u32(offset::REQ_CONS, start);
        t.ring().page.write_u32(offset::REQ_PROD, start);
        let data: Vec<u8> = (0..1500u32).map(|i| i as u8).collect();
        assert_eq!(t.write_some(&data).unwrap(), 1024);
        assert_eq!(t.write_some(&data[1024..]).unwrap(), 0, "ring full");
        assert_eq!(t.ring().notifies.get(), 1);
        assert_eq!(drain_requests(&t.ring().page), &data[..1024]);
        assert_eq!(t.write_some(&data[1024..]).unwrap(), 476);
        assert_eq!(drain_requests(&t.ring().page), &data[1024..]);
        assert_eq!(t.ring().notifies.get(), 2);
    }

    #[test]
    fn read_gets_bytes_in_order_and_moves_cons() {
        let mut t = transport();
        t.ring().page.write_u32(offset::RSP_CONS, 1000);
        t.ring().page.write_u32(offset::RSP_PROD, 1000);
        let mut buf = [0u8; 64];
        assert_eq!(t.read_some(&mut buf).unwrap(), 0);
        assert_eq!(t.ring().notifies.get(), 0, "nothing consumed, no notify");
        push_response(&t.ring().page, b"hello across the wrap point");
        let n = t.read_some(&mut buf[..5]).unwrap();
        assert_eq!(&buf[..n], b"hello");
        let n = t.read_some(&mut buf).unwrap();
        assert_eq!(&buf[..n], b" across the wrap point");
        assert_eq!(t.ring().page.read_u32(offset::RSP_CONS), 1027);
        assert_eq!(t.ring().notifies.get(), 2);
    }

    #[test]
    fn corrupt_indices_are_fatal_not_panics() {
        let mut t = transport();
        t.ring().page.write_u32(offset::RSP_PROD, 5000);
        let mut buf = [0u8; 8];
        let e = t.read_some(&mut buf).unwrap_err();
        assert!(e.is_fatal(), "{e}");
        t.ring().page.write_u32(offset::REQ_CONS, 77);
        t.ring().page.write_u32(offset::REQ_PROD, 3);
        assert!(t.write_some(b"x").unwrap_err().is_fatal());
        assert_eq!(t.ring().notifies.get(), 0);
    }
}
