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

/// Copies `dst.len()` bytes from shared memory at `src` with volatile
/// loads (8 bytes at a time where aligned): the other domain may write the
/// memory meanwhile, so each byte is read exactly once, never assumed
/// stable.
///
/// # Safety
/// `[src, src + dst.len())` is mapped and readable for the whole call.
pub unsafe fn copy_from_shared(src: u64, dst: &mut [u8]) {
    let mut i = 0;
    while i < dst.len() && !(src + i as u64).is_multiple_of(8) {
        // SAFETY: inside the range the caller vouches for.
        dst[i] = unsafe { core::ptr::read_volatile((src + i as u64) as *const u8) };
        i += 1;
    }
    while i + 8 <= dst.len() {
        // SAFETY: 8-aligned, inside the range the caller vouches for.
        let word = unsafe { core::ptr::read_volatile((src + i as u64) as *const u64) };
        dst[i..i + 8].copy_from_slice(&word.to_ne_bytes());
        i += 8;
    }
    while i < dst.len() {
        // SAFETY: inside the range the caller vouches for.
        dst[i] = unsafe { core::ptr::read_volatile((src + i as u64) as *const u8) };
        i += 1;
    }
}

/// Copies `src` into shared memory at `dst` with volatile stores (8 bytes
/// at a time where aligned), so the compiler neither drops nor merges them.
///
/// # Safety
/// `[dst, dst + src.len())` is mapped, writable, and no Rust reference
/// points into it during the call.
pub unsafe fn copy_to_shared(dst: u64, src: &[u8]) {
    let mut i = 0;
    while i < src.len() && !(dst + i as u64).is_multiple_of(8) {
        // SAFETY: inside the range the caller vouches for.
        unsafe { core::ptr::write_volatile((dst + i as u64) as *mut u8, src[i]) };
        i += 1;
    }
    while i + 8 <= src.len() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&src[i..i + 8]);
        // SAFETY: 8-aligned, inside the range the caller vouches for.
        unsafe { core::ptr::write_volatile((dst + i as u64) as *mut u64, u64::from_ne_bytes(word)) };
        i += 8;
    }
    while i < src.len() {
        // SAFETY: inside the range the caller vouches for.
        unsafe { core::ptr::write_volatile((dst + i as u64) as *mut u8, src[i]) };
        i += 1;
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
        // SAFETY: inside the page (checked by `at`), mapped for our lifetime.
        unsafe { copy_from_shared(base, buf) }
    }

    fn write_bytes(&self, offset: usize, data: &[u8]) {
        let base = self.at(offset, data.len());
        // SAFETY: inside the page (checked by `at`); nothing borrows it.
        unsafe { copy_to_shared(base, data) }
    }
}
