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

    fn at(&self, offset: usize, len: usize) -> u64 {
        assert!(offset.checked_add(len).is_some_and(|end| end <= PAGE_SIZE), "access past the page: {offset}+{len}");
        self.addr + offset as u64
    }
}

/// Copies `dst.len()` bytes from shared memory at `src`. The other domain
/// may write that memory meanwhile: the copy is one `rep movs` in inline
/// assembly, which the compiler can neither split, repeat nor elide, so
/// each byte is read exactly once into memory that is ours alone.
///
/// # Safety
/// `[src, src + dst.len())` is mapped and readable for the whole call.
pub unsafe fn copy_from_shared(src: u64, dst: &mut [u8]) {
    // SAFETY: dst is ours and valid for its length; the caller vouches
    // for the source range.
    unsafe { crate::rt::copy_forward(dst.as_mut_ptr(), src as *const u8, dst.len()) }
}

/// Copies `src` into shared memory at `dst` (as `copy_from_shared`, the
/// other way).
///
/// # Safety
/// `[dst, dst + src.len())` is mapped, writable, and no Rust reference
/// points into it during the call.
pub unsafe fn copy_to_shared(dst: u64, src: &[u8]) {
    // SAFETY: src is valid for its length; the caller vouches for the
    // destination range.
    unsafe { crate::rt::copy_forward(dst as *mut u8, src.as_ptr(), src.len()) }
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
        // SAFETY: inside the page (checked by `at`), mapped for our lifetime.
        unsafe { copy_from_shared(base, buf) }
    }

    fn write_bytes(&self, offset: usize, data: &[u8]) {
        let base = self.at(offset, data.len());
        // SAFETY: inside the page (checked by `at`); nothing borrows it.
        unsafe { copy_to_shared(base, data) }
    }
}
