//! What the unit tests share: a shared page in plain memory, and the
//! daemon's side of the xenstore request ring.

use core::cell::RefCell;
use std::vec::Vec;

use xenstore_wire::ring::{mask, offset};

use crate::iface::SharedPage;

/// A page in plain memory; the tests play the other side by hand.
pub(crate) struct FakePage(RefCell<[u8; 4096]>);

impl FakePage {
    /// A page of zeros.
    pub(crate) fn new() -> FakePage {
        FakePage(RefCell::new([0; 4096]))
    }
}

impl SharedPage for FakePage {
    fn read_u32(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.0.borrow()[off..off + 4].try_into().unwrap())
    }
    fn write_u32(&self, off: usize, v: u32) {
        self.0.borrow_mut()[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn read_bytes(&self, off: usize, buf: &mut [u8]) {
        buf.copy_from_slice(&self.0.borrow()[off..off + buf.len()]);
    }
    fn write_bytes(&self, off: usize, data: &[u8]) {
        self.0.borrow_mut()[off..off + data.len()].copy_from_slice(data);
    }
}

/// Plays the daemon: consumes everything in the request ring.
pub(crate) fn drain_requests(page: &FakePage) -> Vec<u8> {
    let cons = page.read_u32(offset::REQ_CONS);
    let prod = page.read_u32(offset::REQ_PROD);
    let mut out = Vec::new();
    let mut c = cons;
    while c != prod {
        let mut b = [0u8];
        page.read_bytes(offset::REQ + mask(c), &mut b);
        out.push(b[0]);
        c = c.wrapping_add(1);
    }
    page.write_u32(offset::REQ_CONS, prod);
    out
}
