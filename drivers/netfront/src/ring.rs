//! Shared-ring layout and index arithmetic (`xen/io/ring.h`), pure.
//!
//! A netif ring page is a 64-byte header followed by fixed-size entries:
//!
//! ```text
//! 0   req_prod   (u32)   frontend writes
//! 4   req_event  (u32)   backend writes: "kick me when req_prod passes this"
//! 8   rsp_prod   (u32)   backend writes
//! 12  rsp_event  (u32)   frontend writes: "kick me when rsp_prod passes this"
//! 16  pvt/pad    (48 bytes)
//! 64  entries
//! ```
//!
//! Indices are free-running `u32`s; the slot is `index & (size - 1)`.
//! Everything the peer writes is read once, then checked.

use core::sync::atomic::{fence, Ordering};

use xen_proto::iface::{SharedPage, PAGE_SIZE};

/// Offset of `req_prod`.
pub const REQ_PROD: usize = 0;
/// Offset of `req_event`.
pub const REQ_EVENT: usize = 4;
/// Offset of `rsp_prod`.
pub const RSP_PROD: usize = 8;
/// Offset of `rsp_event`.
pub const RSP_EVENT: usize = 12;
/// Size of the shared header (indices + `pvt` + `__pad`), where entries
/// start.
pub const HEADER_SIZE: usize = 64;

/// `sizeof(union netif_tx_sring_entry)`.
pub const TX_ENTRY_SIZE: usize = 12;
/// `sizeof(union netif_rx_sring_entry)`.
pub const RX_ENTRY_SIZE: usize = 8;

/// `__CONST_RING_SIZE`: the largest power of two of entries of
/// `entry_size` bytes that fit in a page after the header.
pub const fn ring_size(entry_size: usize) -> u32 {
    let n = (PAGE_SIZE - HEADER_SIZE) / entry_size;
    if n == 0 {
        return 0;
    }
    // Round down to a power of two.
    1 << (usize::BITS - 1 - n.leading_zeros())
}

/// `NET_TX_RING_SIZE`.
pub const TX_RING_SIZE: u32 = ring_size(TX_ENTRY_SIZE);
/// `NET_RX_RING_SIZE`.
pub const RX_RING_SIZE: u32 = ring_size(RX_ENTRY_SIZE);

/// Byte offset of the entry for free-running index `idx` in a ring of
/// `size` (a power of two) entries of `entry_size` bytes.
pub fn entry_offset(idx: u32, size: u32, entry_size: usize) -> usize {
    HEADER_SIZE + (idx & (size - 1)) as usize * entry_size
}

pub use xen_proto::ring_index::notify_due as need_notify;

/// Whether `prod` claims more entries than could legitimately exist:
/// `prod - cons` beyond `limit` (what was requested, or the ring size).
/// Wraparound-safe (`RING_RESPONSE_PROD_OVERFLOW`).
pub fn prod_overflow(prod: u32, cons: u32, limit: u32) -> bool {
    prod.wrapping_sub(cons) > limit
}

/// Initialises a shared ring page as `SHARED_RING_INIT` does: producers
/// 0, events 1, header padding zeroed.
pub fn init_shared<P: SharedPage>(page: &P) {
    page.write_bytes(0, &[0u8; HEADER_SIZE]);
    page.write_u32(REQ_EVENT, 1);
    page.write_u32(RSP_EVENT, 1);
}

/// The frontend's private ring state (`struct *_front_ring` without the
/// pointer): where we produce requests and consume responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontRing {
    /// Next request index we will fill (`req_prod_pvt`).
    pub req_prod_pvt: u32,
    /// Next response index we will read (`rsp_cons`).
    pub rsp_cons: u32,
    /// Number of entries, a power of two.
    pub size: u32,
}

/// The backend published more responses than there were requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overflow;

impl FrontRing {
    /// A fresh ring of `size` entries (`FRONT_RING_INIT`).
    pub const fn new(size: u32) -> FrontRing {
        FrontRing { req_prod_pvt: 0, rsp_cons: 0, size }
    }

    /// Requests produced and not yet answered (consumed responses).
    pub fn outstanding(&self) -> u32 {
        self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }

    /// Free request slots (`RING_FREE_REQUESTS`).
    pub fn free_requests(&self) -> u32 {
        self.size.saturating_sub(self.outstanding())
    }

    /// Whether no request slot is free (`RING_FULL`).
    pub fn is_full(&self) -> bool {
        self.free_requests() == 0
    }

    /// Publishes `req_prod_pvt` and says whether the backend must be
    /// notified (`RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`).
    pub fn push_requests<P: SharedPage>(&self, page: &P) -> bool {
        let old = page.read_u32(REQ_PROD);
        let new = self.req_prod_pvt;
        // The backend sees the requests before the new producer index.
        fence(Ordering::Release);
        page.write_u32(REQ_PROD, new);
        // ... and the new index before we read its req_event.
        fence(Ordering::SeqCst);
        need_notify(old, new, page.read_u32(REQ_EVENT))
    }

    /// The backend's `rsp_prod`, checked: it may not claim more responses
    /// than we have outstanding requests. On success, responses up to the
    /// returned index may be read (after the acquire fence done here).
    pub fn responses_until<P: SharedPage>(&self, page: &P) -> Result<u32, Overflow> {
        let prod = page.read_u32(RSP_PROD);
        // Read responses only after reading the producer index.
        fence(Ordering::Acquire);
        if prod_overflow(prod, self.rsp_cons, self.outstanding()) {
            return Err(Overflow);
        }
        Ok(prod)
    }

    /// Copies out, in order, every response the backend has published and
    /// hands each to `handle` with its index; then asks for an event on
    /// the next one ([`final_check_for_responses`](Self::final_check_for_responses))
    /// and goes on if more arrived meanwhile. Each entry is read from the
    /// shared page once, into `N` (the entry size) bytes.
    ///
    /// Bounded: every response answers a request that was outstanding when
    /// the drain began (the overflow check), and `handle` cannot add
    /// requests, so a call reads at most `size` responses.
    pub fn drain_responses<P: SharedPage, const N: usize>(
        &mut self,
        page: &P,
        mut handle: impl FnMut(u32, &[u8; N]),
    ) -> Result<(), Overflow> {
        loop {
            let prod = self.responses_until(page)?;
            while self.rsp_cons != prod {
                let pos = self.rsp_cons;
                let mut entry = [0u8; N];
                page.read_bytes(entry_offset(pos, self.size, N), &mut entry);
                self.rsp_cons = pos.wrapping_add(1);
                handle(pos, &entry);
            }
            if !self.final_check_for_responses(page) {
                return Ok(());
            }
        }
    }

    /// `RING_FINAL_CHECK_FOR_RESPONSES`: with nothing left to consume,
    /// asks for an event on the next response, then looks again to close
    /// the race with a response that arrived meanwhile. True if there is
    /// more to consume.
    pub fn final_check_for_responses<P: SharedPage>(&self, page: &P) -> bool {
        if page.read_u32(RSP_PROD) != self.rsp_cons {
            return true;
        }
        page.write_u32(RSP_EVENT, self.rsp_cons.wrapping_add(1));
        fence(Ordering::SeqCst);
        page.read_u32(RSP_PROD) != self.rsp_cons
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_ring_h() {
        // Values from netif.h/ring.h as compiled by gcc against the
        // installed headers: entries 12 and 8 bytes, ring at offset 64,
        // __CONST_RING_SIZE(netif_tx|rx, 4096) = 256.
        assert_eq!(TX_RING_SIZE, 256);
        assert_eq!(RX_RING_SIZE, 256);
        assert_eq!(ring_size(4032), 1);
        assert_eq!(ring_size(4033), 0);
        assert_eq!(ring_size(1), 2048);
        assert_eq!(ring_size(16), 128); // e.g. blkif-sized entries
        assert_eq!(entry_offset(0, 256, TX_ENTRY_SIZE), 64);
        assert_eq!(entry_offset(255, 256, TX_ENTRY_SIZE), 64 + 255 * 12);
        assert_eq!(entry_offset(256, 256, TX_ENTRY_SIZE), 64);
        assert_eq!(entry_offset(u32::MAX, 256, RX_ENTRY_SIZE), 64 + 255 * 8);
        assert!(entry_offset(255, 256, TX_ENTRY_SIZE) + TX_ENTRY_SIZE <= PAGE_SIZE);
        assert!(entry_offset(255, 256, RX_ENTRY_SIZE) + RX_ENTRY_SIZE <= PAGE_SIZE);
        assert_eq!((REQ_PROD, REQ_EVENT, RSP_PROD, RSP_EVENT), (0, 4, 8, 12));
    }

    #[test]
    fn notify_window() {
        // Peer asked for an event at index 5.
        assert!(need_notify(4, 5, 5));
        assert!(need_notify(0, 10, 5));
        assert!(!need_notify(5, 10, 5), "event already passed before");
        assert!(!need_notify(0, 4, 5), "not reached yet");
        assert!(!need_notify(7, 7, 5), "nothing pushed");
        // Exactly the first new entry.
        assert!(need_notify(0, 1, 1));
    }

    #[test]
    fn notify_wraparound() {
        let old = u32::MAX - 2;
        assert!(need_notify(old, 3, u32::MAX));
        assert!(need_notify(old, 3, 0));
        assert!(need_notify(old, 3, 3));
        assert!(!need_notify(old, 3, 4));
        assert!(!need_notify(old, 3, old));
        assert!(!need_notify(old, 3, old - 10));
        assert!(need_notify(u32::MAX, 0, 0));
    }

    #[test]
    fn overflow_check_wraps() {
        assert!(!prod_overflow(5, 3, 2));
        assert!(prod_overflow(6, 3, 2));
        assert!(!prod_overflow(1, u32::MAX - 1, 3));
        assert!(prod_overflow(2, u32::MAX - 1, 3));
        // A producer behind the consumer is a huge distance: overflow.
        assert!(prod_overflow(2, 3, 256));
    }

    struct Page(core::cell::RefCell<[u8; PAGE_SIZE]>);
    impl SharedPage for Page {
        fn read_u32(&self, o: usize) -> u32 {
            let b = self.0.borrow();
            u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
        }
        fn write_u32(&self, o: usize, v: u32) {
            self.0.borrow_mut()[o..o + 4].copy_from_slice(&v.to_le_bytes())
        }
        fn read_bytes(&self, o: usize, buf: &mut [u8]) {
            buf.copy_from_slice(&self.0.borrow()[o..o + buf.len()])
        }
        fn write_bytes(&self, o: usize, d: &[u8]) {
            self.0.borrow_mut()[o..o + d.len()].copy_from_slice(d)
        }
    }

    #[test]
    fn front_ring_push_and_final_check() {
        let page = Page(core::cell::RefCell::new([0xaa; PAGE_SIZE]));
        init_shared(&page);
        assert_eq!(page.read_u32(REQ_EVENT), 1);
        assert_eq!(page.read_u32(RSP_EVENT), 1);
        let mut buf = [0xffu8; 48];
        page.read_bytes(16, &mut buf);
        assert_eq!(buf, [0; 48]);

        let mut r = FrontRing::new(256);
        r.req_prod_pvt = 3;
        assert!(r.push_requests(&page), "first push crosses req_event 1");
        r.req_prod_pvt = 5;
        assert!(!r.push_requests(&page), "backend did not re-arm");
        page.write_u32(REQ_EVENT, 6);
        r.req_prod_pvt = 6;
        assert!(r.push_requests(&page));
        assert_eq!(r.free_requests(), 250);

        // Responses: backend claims 7 with 6 outstanding: overflow.
        page.write_u32(RSP_PROD, 7);
        assert_eq!(r.responses_until(&page), Err(Overflow));
        page.write_u32(RSP_PROD, 4);
        assert_eq!(r.responses_until(&page), Ok(4));
        assert!(r.final_check_for_responses(&page));
        r.rsp_cons = 4;
        assert!(!r.final_check_for_responses(&page));
        assert_eq!(page.read_u32(RSP_EVENT), 5);
    }

    #[test]
    fn front_ring_across_u32_wrap() {
        let page = Page(core::cell::RefCell::new([0; PAGE_SIZE]));
        init_shared(&page);
        let start = u32::MAX - 1;
        page.write_u32(REQ_PROD, start);
        page.write_u32(REQ_EVENT, start.wrapping_add(1));
        let mut r = FrontRing { req_prod_pvt: start.wrapping_add(4), rsp_cons: start, size: 256 };
        assert_eq!(r.outstanding(), 4);
        assert!(r.push_requests(&page));
        page.write_u32(RSP_PROD, start.wrapping_add(4));
        assert_eq!(r.responses_until(&page), Ok(2));
        r.rsp_cons = 2;
        assert_eq!(r.outstanding(), 0);
        assert!(!r.final_check_for_responses(&page));
        assert_eq!(page.read_u32(RSP_EVENT), 3);
    }
}
