//! Grant tables v1: our grant entries (in frames Xen maps into the window
//! above RAM), the refs handed out, and mappings of other domains' grants.
//!
//! The refs are split in two pools at start-up, so that no peer can make
//! the guest lose its network: [`NetfrontGrants`] grants from netfront's
//! ([`NETFRONT_REFS`], enough for both rings and every buffer of full
//! rings), [`XenGrants`] (channels, tests, benchmarks) from the rest, and
//! the channels' pages are capped too ([`CHANNEL_PAGES`]). The channel
//! manager keeps within smaller caps of its own; these are the backstop.

use super::page::{copy_from_shared, copy_to_shared, PhysPage};
use super::physmap::Window;
use ::xen_abi::abi::ops::gnttabop;
use ::xen_abi::hypercall::{self, Errno, GrantError};
use alloc::vec::Vec;
use core::sync::atomic::{fence, AtomicU16, Ordering};
use xen_proto::grant_refs::RefAllocator;
use xen_proto::iface::{DomId, GrantRef, GrantTable, OwnedRegion, RegionGrants, SharedPage, SharedRegion, XenError};

/// Entries per 4 KiB frame of v1 grant entries.
const ENTRIES_PER_FRAME: u32 = 4096 / gnttabop::ENTRY_V1_SIZE as u32;
/// We map at most this many grant-table frames (2048 refs).
pub const MAX_FRAMES: usize = 4;
/// Refs reserved for netfront: its two rings and a buffer for every slot
/// of both (514), and a few spare.
pub const NETFRONT_REFS: u32 = 2 + netfront::ring::RX_RING_SIZE + netfront::ring::TX_RING_SIZE + 6;
/// Pages the channel pool may hold at once: the channel manager's cap.
pub const CHANNEL_PAGES: u32 = channel::manager::MAX_CHANNEL_PAGES as u32;
// With every grant-table frame mapped, both pools get all they may use.
const _: () = assert!(
    NETFRONT_REFS as usize + channel::manager::MAX_CHANNEL_GRANTS
        <= MAX_FRAMES * ENTRIES_PER_FRAME as usize - gnttabop::NR_RESERVED_ENTRIES as usize
);

struct State {
    frames: [u64; MAX_FRAMES],
    /// Netfront's refs, first in the table.
    netfront_refs: RefAllocator,
    /// Everyone else's.
    refs: RefAllocator,
    window: Window,
    mapped: u32,
    pages: u32,
    /// Of `pages`, those of the channel pool.
    channel_pages: u32,
}

impl State {
    fn pool(&mut self, pool: Pool) -> &mut RefAllocator {
        match pool {
            Pool::Netfront => &mut self.netfront_refs,
            Pool::Channels => &mut self.refs,
        }
    }

    /// Counts `n` pages allocated in `pool`, or refuses if over its cap.
    fn take_pages(&mut self, pool: Pool, n: u32) -> Result<(), XenError> {
        if pool == Pool::Channels {
            if self.channel_pages.saturating_add(n) > CHANNEL_PAGES {
                return Err(XenError::Exhausted);
            }
            self.channel_pages += n;
        }
        self.pages += n;
        Ok(())
    }

    fn give_pages(&mut self, pool: Pool, n: u32) {
        if pool == Pool::Channels {
            self.channel_pages = self.channel_pages.saturating_sub(n);
        }
        self.pages = self.pages.saturating_sub(n);
    }
}

/// Which refs (and page budget) a handle grants from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pool {
    Netfront,
    Channels,
}

static STATE: spin::Once<spin::Mutex<State>> = spin::Once::new();

fn grant_error(e: GrantError) -> XenError {
    match e {
        GrantError::Hypercall(errno) => XenError::Errno(errno.0 as i32),
        GrantError::Status(status) => XenError::Status(status),
    }
}

/// Maps the grant table and sets up the window for peers' pages.
pub fn init(mut window: Window) -> Result<u32, &'static str> {
    let (_, max) = hypercall::grant_query_size().map_err(|_| "GNTTABOP_query_size failed")?;
    let nr = (max as usize).clamp(1, MAX_FRAMES);
    let mut frames = [0; MAX_FRAMES];
    for frame in frames.iter_mut().take(nr) {
        *frame = window.alloc().map_err(|_| "no room for grant-table frames")?;
    }
    super::startup().map_grant_table(&frames[..nr])?;
    let entries = nr as u32 * ENTRIES_PER_FRAME;
    let first = gnttabop::NR_RESERVED_ENTRIES;
    // Netfront's first: with a small table, the network wins.
    let for_netfront = NETFRONT_REFS.min(entries - first);
    let netfront_refs = RefAllocator::new(first, for_netfront).map_err(|_| "bad grant ref range")?;
    let rest = first + for_netfront;
    let refs = RefAllocator::new(rest, entries - rest).map_err(|_| "bad grant ref range")?;
    STATE.call_once(|| spin::Mutex::new(State { frames, netfront_refs, refs, window, mapped: 0, pages: 0, channel_pages: 0 }));
    Ok(entries - first)
}

fn entry_addr(state: &State, gref: GrantRef) -> Option<u64> {
    let frame = *state.frames.get((gref / ENTRIES_PER_FRAME) as usize).filter(|&&f| f != 0)?;
    Some(frame + u64::from(gref % ENTRIES_PER_FRAME) * gnttabop::ENTRY_V1_SIZE as u64)
}

fn flags(addr: u64) -> &'static AtomicU16 {
    // SAFETY: `addr` is a grant entry inside a mapped grant-table frame
    // (entry_addr), 8-aligned; Xen updates the flags atomically too.
    unsafe { &*(addr as *const AtomicU16) }
}

/// Refs granted by each pool now: (netfront's: its rings, the posted
/// receive buffers and the transmits in flight, which vary with traffic;
/// the general pool's: channels, tests).
pub fn refs_by_pool() -> (usize, usize) {
    STATE.get().map_or((0, 0), |s| {
        let s = s.lock();
        let granted = |a: &RefAllocator| a.capacity() - a.available();
        (granted(&s.netfront_refs), granted(&s.refs))
    })
}

/// Refs granted and pages mapped now, for leak reports.
pub fn in_use() -> (usize, u32, u32) {
    STATE.get().map_or((0, 0, 0), |s| {
        let s = s.lock();
        let granted = |a: &RefAllocator| a.capacity() - a.available();
        (granted(&s.netfront_refs) + granted(&s.refs), s.mapped, s.pages)
    })
}

/// A handle on the one grant table, granting from the general pool
/// (channels, tests, benchmarks); cheap to create.
#[derive(Clone, Default)]
pub struct XenGrants;

/// A handle on the one grant table, granting from netfront's own refs,
/// which nothing else can take.
#[derive(Clone, Default)]
pub struct NetfrontGrants;

pub struct MappedPage {
    page: PhysPage,
    handle: u32,
}

impl SharedPage for MappedPage {
    fn read_u32(&self, offset: usize) -> u32 {
        self.page.read_u32(offset)
    }
    fn write_u32(&self, offset: usize, value: u32) {
        self.page.write_u32(offset, value)
    }
    fn read_bytes(&self, offset: usize, buf: &mut [u8]) {
        self.page.read_bytes(offset, buf)
    }
    fn write_bytes(&self, offset: usize, data: &[u8]) {
        self.page.write_bytes(offset, data)
    }
}

fn state() -> Result<spin::MutexGuard<'static, State>, XenError> {
    Ok(STATE.get().ok_or(XenError::Errno(-38))?.lock())
}

fn alloc_page(pool: Pool) -> Result<PhysPage, XenError> {
    state()?.take_pages(pool, 1)?;
    let Some(addr) = crate::memory::alloc_frame() else {
        state()?.give_pages(pool, 1);
        return Err(XenError::Exhausted);
    };
    // SAFETY: a frame just allocated to us, identity mapped; zeroed so
    // no old data reaches a peer.
    unsafe { core::ptr::write_bytes(addr as *mut u8, 0, 4096) };
    // SAFETY: ours until free_page returns it.
    Ok(unsafe { PhysPage::new(addr) })
}

fn free_page(pool: Pool, page: PhysPage) {
    if crate::memory::free_frame(page.addr()).is_ok() {
        if let Ok(mut s) = state() {
            s.give_pages(pool, 1);
        }
    }
}

fn grant(pool: Pool, page: &PhysPage, to: DomId, readonly: bool) -> Result<GrantRef, XenError> {
    // Checked before a ref is taken, so a refusal leaks none.
    let frame = super::startup().grant_frame(page.addr()).ok_or(XenError::Errno(-22))?;
    let frame = u32::try_from(frame).map_err(|_| XenError::Errno(-22))?;
    let mut s = state()?;
    let gref = s.pool(pool).alloc().map_err(|_| XenError::Exhausted)?;
    let Some(addr) = entry_addr(&s, gref) else {
        let _ = s.pool(pool).free(gref);
        return Err(XenError::Exhausted);
    };
    // SAFETY: a grant entry of ours (entry_addr), not in use (the ref was
    // free): domid at +2, frame at +4.
    unsafe {
        core::ptr::write_volatile((addr + 2) as *mut u16, to);
        core::ptr::write_volatile((addr + 4) as *mut u32, frame);
    }
    // Release: domid and frame are visible before the flags permit access.
    fence(Ordering::Release);
    let ro = if readonly { gnttabop::GTF_READONLY } else { 0 };
    flags(addr).store(gnttabop::GTF_PERMIT_ACCESS | ro, Ordering::SeqCst);
    Ok(gref)
}

fn revoke(gref: GrantRef) -> Result<(), XenError> {
    let mut s = state()?;
    let addr = entry_addr(&s, gref).ok_or(XenError::Errno(-22))?;
    let f = flags(addr);
    let mut current = f.load(Ordering::SeqCst);
    loop {
        if current & (gnttabop::GTF_READING | gnttabop::GTF_WRITING) != 0 {
            return Err(XenError::Errno(Errno::EBUSY.0 as i32));
        }
        // Only clear the flags if the peer did not start mapping meanwhile.
        match f.compare_exchange(current, 0, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => break,
            Err(now) => current = now,
        }
    }
    // Back to whichever pool it came from.
    if s.netfront_refs.is_allocated(gref) {
        s.netfront_refs.free(gref).map_err(|_| XenError::Errno(-22))
    } else {
        s.refs.free(gref).map_err(|_| XenError::Errno(-22))
    }
}

fn map(from: DomId, gref: GrantRef, readonly: bool) -> Result<MappedPage, XenError> {
    let mut s = state()?;
    let addr = s.window.alloc().map_err(|_| XenError::Exhausted)?;
    // SAFETY: `addr` is a free frame of the window above RAM.
    match unsafe { hypercall::map_grant_ref(from, gref, addr, readonly) } {
        Ok(handle) => {
            s.mapped += 1;
            // SAFETY: the peer's page is now mapped at addr until unmap.
            Ok(MappedPage { page: unsafe { PhysPage::new(addr) }, handle })
        }
        Err(e) => {
            let _ = s.window.free(addr);
            Err(grant_error(e))
        }
    }
}

fn unmap(mapped: MappedPage) -> Result<(), XenError> {
    let mut s = state()?;
    let addr = mapped.page.addr();
    // SAFETY: addr/handle come from a successful map; `mapped` is
    // consumed, so no access to the page follows.
    unsafe { hypercall::unmap_grant_ref(addr, mapped.handle) }.map_err(grant_error)?;
    s.mapped -= 1;
    s.window.free(addr).map_err(|_| XenError::Errno(-22))
}

/// Both handles are the same grant table; only the pool differs.
macro_rules! grant_table {
    ($handle:ty, $pool:expr) => {
        impl GrantTable for $handle {
            type Page = PhysPage;
            type Mapped = MappedPage;

            fn alloc_page(&mut self) -> Result<PhysPage, XenError> {
                alloc_page($pool)
            }
            fn free_page(&mut self, page: PhysPage) {
                free_page($pool, page)
            }
            fn grant(&mut self, page: &PhysPage, to: DomId, readonly: bool) -> Result<GrantRef, XenError> {
                grant($pool, page, to, readonly)
            }
            fn revoke(&mut self, gref: GrantRef) -> Result<(), XenError> {
                revoke(gref)
            }
            fn map(&mut self, from: DomId, gref: GrantRef, readonly: bool) -> Result<MappedPage, XenError> {
                map(from, gref, readonly)
            }
            fn unmap(&mut self, mapped: MappedPage) -> Result<(), XenError> {
                unmap(mapped)
            }
        }
    };
}

grant_table!(XenGrants, Pool::Channels);
grant_table!(NetfrontGrants, Pool::Netfront);

/// Contiguous pages of our own RAM (a channel's transmit ring).
pub struct OwnedPages {
    addr: u64,
    pages: usize,
}

impl OwnedPages {
    fn at(&self, offset: usize, len: usize) -> u64 {
        assert!(offset.checked_add(len).is_some_and(|end| end <= self.pages * 4096), "access past the region: {offset}+{len}");
        self.addr + offset as u64
    }
}

impl SharedRegion for OwnedPages {
    fn len(&self) -> usize {
        self.pages * 4096
    }
    fn read_bytes(&self, offset: usize, buf: &mut [u8]) {
        // SAFETY: inside the region (checked), which we own until freed.
        unsafe { copy_from_shared(self.at(offset, buf.len()), buf) }
    }
    fn write_bytes(&self, offset: usize, data: &[u8]) {
        // SAFETY: as above; no reference into the region is alive.
        unsafe { copy_to_shared(self.at(offset, data.len()), data) }
    }
}

impl OwnedRegion for OwnedPages {
    fn fill<T>(&self, offset: usize, len: usize, f: impl FnOnce(&mut [u8]) -> T) -> T {
        let addr = self.at(offset, len);
        // SAFETY: inside the region (checked); the pages are ours, identity
        // mapped, and granted to the peer read-only, so nothing but `f`
        // writes them while the slice lives; `&self` methods that copy
        // bytes are not called meanwhile (f has no access to `self`).
        let slice = unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, len) };
        f(slice)
    }
}

/// Another domain's pages mapped contiguously in the window above RAM.
pub struct MappedPages {
    addr: u64,
    handles: Vec<u32>,
    readonly: bool,
}

impl MappedPages {
    fn at(&self, offset: usize, len: usize) -> u64 {
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= self.handles.len() * 4096),
            "access past the mapped region: {offset}+{len}"
        );
        self.addr + offset as u64
    }
}

impl SharedRegion for MappedPages {
    fn len(&self) -> usize {
        self.handles.len() * 4096
    }
    fn read_bytes(&self, offset: usize, buf: &mut [u8]) {
        // SAFETY: inside the mapping (checked), mapped until unmap_region
        // consumes `self`; the peer may write it, so copy_from_shared reads
        // each byte once, volatile.
        unsafe { copy_from_shared(self.at(offset, buf.len()), buf) }
    }
    fn write_bytes(&self, offset: usize, data: &[u8]) {
        assert!(!self.readonly, "write to a read-only mapping of a peer's pages");
        // SAFETY: inside a writable mapping (checked).
        unsafe { copy_to_shared(self.at(offset, data.len()), data) }
    }
}

impl RegionGrants for XenGrants {
    type Region = OwnedPages;
    type MappedRegion = MappedPages;

    fn alloc_region(&mut self, pages: usize) -> Result<OwnedPages, XenError> {
        let n = u32::try_from(pages).map_err(|_| XenError::Exhausted)?;
        state()?.take_pages(Pool::Channels, n)?;
        let Some(addr) = crate::memory::alloc_contiguous(pages as u64) else {
            state()?.give_pages(Pool::Channels, n);
            return Err(XenError::Exhausted);
        };
        // SAFETY: frames just allocated to us, identity mapped; zeroed so no
        // old data reaches a peer.
        unsafe { core::ptr::write_bytes(addr as *mut u8, 0, pages * 4096) };
        Ok(OwnedPages { addr, pages })
    }

    fn free_region(&mut self, region: OwnedPages) {
        for i in 0..region.pages {
            if crate::memory::free_frame(region.addr + i as u64 * 4096).is_ok() {
                if let Ok(mut s) = state() {
                    s.give_pages(Pool::Channels, 1);
                }
            }
        }
    }

    fn grant_region_page(&mut self, region: &OwnedPages, index: usize, to: DomId, readonly: bool) -> Result<GrantRef, XenError> {
        if index >= region.pages {
            return Err(XenError::Errno(-22));
        }
        // SAFETY: a page of the region, ours until free_region.
        let page = unsafe { PhysPage::new(region.addr + index as u64 * 4096) };
        grant(Pool::Channels, &page, to, readonly)
    }

    fn map_region(&mut self, from: DomId, grefs: &[GrantRef], readonly: bool) -> Result<MappedPages, XenError> {
        let mut s = state()?;
        let addr = s.window.alloc_contiguous(grefs.len()).map_err(|_| XenError::Exhausted)?;
        let mut handles = Vec::with_capacity(grefs.len());
        for (i, &gref) in grefs.iter().enumerate() {
            let at = addr + i as u64 * 4096;
            // SAFETY: `at` is a frame of the window allocated just above.
            match unsafe { hypercall::map_grant_ref(from, gref, at, readonly) } {
                Ok(handle) => {
                    handles.push(handle);
                    s.mapped += 1;
                }
                Err(e) => {
                    for (j, &h) in handles.iter().enumerate() {
                        let at = addr + j as u64 * 4096;
                        // SAFETY: mapped just above, nothing refers to it.
                        if unsafe { hypercall::unmap_grant_ref(at, h) }.is_ok() {
                            s.mapped -= 1;
                            let _ = s.window.free(at);
                        }
                        // Otherwise the peer's page may still be mapped
                        // there: the frame stays taken, never reused.
                    }
                    // Frame i failed to map, the ones after it were never
                    // tried: nothing is mapped there.
                    for j in handles.len()..grefs.len() {
                        let _ = s.window.free(addr + j as u64 * 4096);
                    }
                    return Err(grant_error(e));
                }
            }
        }
        Ok(MappedPages { addr, handles, readonly })
    }

    fn unmap_region(&mut self, region: MappedPages) -> Result<(), XenError> {
        let mut s = state()?;
        let mut first = Ok(());
        for (i, &h) in region.handles.iter().enumerate() {
            let at = region.addr + i as u64 * 4096;
            // SAFETY: mapped by map_region; `region` is consumed, so no
            // access follows.
            match unsafe { hypercall::unmap_grant_ref(at, h) } {
                Ok(()) => {
                    s.mapped -= 1;
                    let _ = s.window.free(at);
                }
                Err(e) => first = first.and(Err(grant_error(e))),
            }
        }
        first
    }
}
