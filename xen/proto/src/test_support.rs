//! What tests share (this crate's unit tests, and with the `test-support`
//! feature other crates' tests and the fuzz targets in `fuzz/checks`): a
//! shared page in plain memory, and the daemon's side of the xenstore
//! request ring.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;

use xenstore_wire::ring::{mask, offset};

use crate::iface::{SharedPage, PAGE_SIZE};

/// A page in plain memory; the tests play the other side by hand. Its
/// clones are the same page, so each end of a fake ring can hold one.
#[derive(Clone)]
pub struct FakePage(Rc<RefCell<[u8; PAGE_SIZE]>>);

impl FakePage {
    /// A page of zeros.
    pub fn new() -> FakePage {
        FakePage(Rc::new(RefCell::new([0; PAGE_SIZE])))
    }
}

impl Default for FakePage {
    fn default() -> FakePage {
        FakePage::new()
    }
}

impl SharedPage for FakePage {
    fn read_u32(&self, off: usize) -> u32 {
        let b = self.0.borrow();
        u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
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
pub fn drain_requests(page: &FakePage) -> Vec<u8> {
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
