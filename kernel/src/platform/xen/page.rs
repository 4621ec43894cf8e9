//! A guest-physical page reached through the identity map, shared with Xen
//! or another domain: every access is volatile, since the other side may
//! change it at any time.

use xen_proto::iface::{SharedPage, PAGE_SIZE};

#[derive(Debug)]
pub struct PhysPage {
    addr: u64,
}

impl PhysPage {
    /// # Safety
    /// `addr` is a page-aligned, identity-mapped address whose page stays
    /// mapped (RAM we own, a Xen special page, or a mapped grant) for as
    /// long as the `PhysPage` lives.
    pub unsafe fn new(addr: u64) -> PhysPage {
        debug_assert!(addr.is_multiple_of(PAGE_SIZE as u64) && addr != 0);
        PhysPage { addr }
    }

    pub fn addr(&self) -> u64 {
        self.addr
    }

    pub fn frame(&self) -> u64 {
        self.addr / PAGE_SIZE as u64
    }

    fn at(&self, offset: usize, len: usize) -> u64 {
        assert!(offset.checked_add(len).is_some_and(|end| end <= PAGE_SIZE), "access past the page: {offset}+{len}");
        self.addr + offset as u64
    }
}

impl SharedPage for PhysPage {
    fn read_u32(&self, offset: usize) -> u32 {
        assert!(offset.is_multiple_of(4), "unaligned u32 at {offset}");
        // SAFETY: within the page (checked by `at`), aligned, and the page
        // is mapped for our lifetime (constructor contract).
        unsafe { core::ptr::read_volatile(self.at(offset, 4) as *const u32) }
    }

    fn write_u32(&self, offset: usize, value: u32) {
        assert!(offset.is_multiple_of(4), "unaligned u32 at {offset}");
        // SAFETY: as in read_u32.
        unsafe { core::ptr::write_volatile(self.at(offset, 4) as *mut u32, value) }
    }

    fn read_bytes(&self, offset: usize, buf: &mut [u8]) {
        let base = self.at(offset, buf.len());
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: base + i is inside the page (checked by `at`).
            *b = unsafe { core::ptr::read_volatile((base + i as u64) as *const u8) };
        }
    }

    fn write_bytes(&self, offset: usize, data: &[u8]) {
        let base = self.at(offset, data.len());
        for (i, &b) in data.iter().enumerate() {
            // SAFETY: base + i is inside the page (checked by `at`).
            unsafe { core::ptr::write_volatile((base + i as u64) as *mut u8, b) };
        }
    }
}
