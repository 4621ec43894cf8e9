//! The channel's platform for two host threads: grant tables, pages and
//! event channels over memory the threads share, enough for the `channel`
//! crate's real [`Channel`](channel::Channel) to offer, attach and move
//! frames between two threads as it does between two guests.
//!
//! - Control pages are [`AtomicPage`]s: every `u32` field is an atomic,
//!   read and written `Relaxed`; the channel orders them with its own
//!   fences, as it does on real pages.
//! - Ring memory is a [`Backing`], one of two:
//!   - [`RawMem`]: plain bytes copied with `memcpy`, and frames built in
//!     place (`OwnedRegion::fill` lends the ring's bytes), which is what
//!     the kernel does (`kernel/cohort/src/platform/xen/grants.rs`). The
//!     figures that compare the ring with memcpy use this one.
//!   - [`AtomicMem`]: `AtomicU64` words copied one at a time, no `unsafe`;
//!     `fill` builds the frame in a buffer and copies it in (one copy
//!     more). Measured beside the other to show what the page
//!     implementation costs, not the ring.
//!
//! One [`Grants`] table is shared by both "domains" (each has its own
//! handle with its own domid); grant refs index it. Mapping a region's
//! pages maps the whole region: the refs must be its pages, in order.
//! Nothing here is checked as strictly as xensim does; the `tests/xensim`
//! suites check the channel against a careful Xen, this only moves bytes.

use std::cell::{RefCell, UnsafeCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use xen_proto::iface::{
    DomId, EventChannels, GrantRef, GrantTable, OwnedRegion, Port, RegionGrants, SharedPage, SharedRegion, XenError, PAGE_SIZE,
};

const EINVAL: XenError = XenError::Errno(-22);

/// A 4 KiB page of atomic `u32` words, shared by its owner and the peer
/// that maps it.
#[derive(Clone)]
pub struct AtomicPage(Arc<[AtomicU32; PAGE_SIZE / 4]>);

impl AtomicPage {
    fn new() -> Self {
        AtomicPage(Arc::new(std::array::from_fn(|_| AtomicU32::new(0))))
    }

    fn word(&self, offset: usize) -> &AtomicU32 {
        assert!(offset.is_multiple_of(4), "unaligned u32 at {offset}");
        &self.0[offset / 4]
    }
}

impl SharedPage for AtomicPage {
    fn read_u32(&self, offset: usize) -> u32 {
        self.word(offset).load(Ordering::Relaxed)
    }

    fn write_u32(&self, offset: usize, value: u32) {
        self.word(offset).store(value, Ordering::Relaxed)
    }

    // Byte copies of a control page happen at set-up only (layout::init):
    // one byte at a time, little endian, as the fields are.
    fn read_bytes(&self, offset: usize, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            let at = offset + i;
            *b = self.0[at / 4].load(Ordering::Relaxed).to_le_bytes()[at % 4];
        }
    }

    fn write_bytes(&self, offset: usize, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            let at = offset + i;
            let word = &self.0[at / 4];
            let mut bytes = word.load(Ordering::Relaxed).to_le_bytes();
            bytes[at % 4] = b;
            // The page's owner is its only writer: load-modify-store loses
            // nothing.
            word.store(u32::from_le_bytes(bytes), Ordering::Relaxed);
        }
    }
}

/// Memory of a ring, shared by the thread that owns it (writes) and the
/// one that maps it (reads).
pub trait Backing: Send + Sync + 'static {
    fn new(len: usize) -> Self;
    /// Its size in bytes.
    fn bytes(&self) -> usize;
    fn read(&self, offset: usize, buf: &mut [u8]);
    fn write(&self, offset: usize, data: &[u8]);
    /// Lends `[offset, offset + len)` to `f` to write a frame in place;
    /// `scratch` is the owner's buffer for backings that cannot lend.
    fn fill<T>(&self, offset: usize, len: usize, scratch: &mut Vec<u8>, f: impl FnOnce(&mut [u8]) -> T) -> T;
    /// What the figures call it.
    const NAME: &'static str;
}

fn check_range(len: usize, offset: usize, n: usize) {
    assert!(offset.checked_add(n).is_some_and(|end| end <= len), "ring access {offset}+{n} past its {len} bytes");
}

/// Plain bytes, copied with `memcpy` (`ptr::copy_nonoverlapping`).
///
/// The ring protocol is what keeps the two threads off the same bytes at
/// the same time: the producer writes only space the consumer released
/// (its index, read with the channel's acquire ordering) and the consumer
/// reads only what the producer published (release fence, then the
/// index). Both threads run our own channel code, so the protocol holds;
/// a broken protocol here would be a data race, which is why this type
/// lives only in the benchmark.
pub struct RawMem {
    words: Box<[UnsafeCell<u64>]>,
}

// SAFETY: the bytes are only accessed through `read`, `write` and `fill`,
// on ranges the channel's ring protocol hands to one thread at a time (see
// the type's comment): a range is written by the owner before it publishes
// it (release), and read by the peer after it sees it published (acquire)
// and before it releases it.
unsafe impl Sync for RawMem {}

impl RawMem {
    fn ptr(&self) -> *mut u8 {
        UnsafeCell::raw_get(self.words.as_ptr()).cast::<u8>()
    }
}

impl Backing for RawMem {
    const NAME: &'static str = "channel";

    fn new(len: usize) -> Self {
        RawMem { words: (0..len.div_ceil(8)).map(|_| UnsafeCell::new(0)).collect() }
    }

    fn bytes(&self) -> usize {
        self.words.len() * 8
    }

    fn read(&self, offset: usize, buf: &mut [u8]) {
        check_range(self.bytes(), offset, buf.len());
        // SAFETY: in bounds (checked); nobody writes these bytes meanwhile
        // (the type's comment); `buf` is ours and does not overlap.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr().add(offset), buf.as_mut_ptr(), buf.len()) }
    }

    fn write(&self, offset: usize, data: &[u8]) {
        check_range(self.bytes(), offset, data.len());
        // SAFETY: in bounds (checked); nobody reads or writes these bytes
        // meanwhile (the type's comment); `data` does not overlap.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr().add(offset), data.len()) }
    }

    fn fill<T>(&self, offset: usize, len: usize, _scratch: &mut Vec<u8>, f: impl FnOnce(&mut [u8]) -> T) -> T {
        check_range(self.bytes(), offset, len);
        // SAFETY: in bounds (checked); the range is free space of the
        // owner's ring, which nobody else touches until it is published,
        // after `f` returns; the slice lives only during `f`.
        let slice = unsafe { std::slice::from_raw_parts_mut(self.ptr().add(offset), len) };
        f(slice)
    }
}

/// `AtomicU64` words, copied one word at a time (`Relaxed`); no `unsafe`.
pub struct AtomicMem {
    words: Box<[AtomicU64]>,
}

impl Backing for AtomicMem {
    const NAME: &'static str = "channel_atomic";

    fn new(len: usize) -> Self {
        AtomicMem { words: (0..len.div_ceil(8)).map(|_| AtomicU64::new(0)).collect() }
    }

    fn bytes(&self) -> usize {
        self.words.len() * 8
    }

    fn read(&self, offset: usize, buf: &mut [u8]) {
        check_range(self.bytes(), offset, buf.len());
        let mut at = offset;
        let mut out = &mut buf[..];
        while !out.is_empty() {
            let word = self.words[at / 8].load(Ordering::Relaxed).to_le_bytes();
            let skip = at % 8;
            let n = (8 - skip).min(out.len());
            out[..n].copy_from_slice(&word[skip..skip + n]);
            out = &mut out[n..];
            at += n;
        }
    }

    fn write(&self, offset: usize, data: &[u8]) {
        check_range(self.bytes(), offset, data.len());
        let mut at = offset;
        let mut data = data;
        while !data.is_empty() {
            let skip = at % 8;
            let n = (8 - skip).min(data.len());
            let word = &self.words[at / 8];
            let value = if n == 8 {
                u64::from_le_bytes(data[..8].try_into().unwrap_or_default())
            } else {
                // The owner is the only writer: load-modify-store.
                let mut bytes = word.load(Ordering::Relaxed).to_le_bytes();
                bytes[skip..skip + n].copy_from_slice(&data[..n]);
                u64::from_le_bytes(bytes)
            };
            word.store(value, Ordering::Relaxed);
            data = &data[n..];
            at += n;
        }
    }

    fn fill<T>(&self, offset: usize, len: usize, scratch: &mut Vec<u8>, f: impl FnOnce(&mut [u8]) -> T) -> T {
        check_range(self.bytes(), offset, len);
        // The bytes' old contents are our own stale records: `f` writes
        // the frame whole, so the buffer need not be read in first.
        scratch.resize(len, 0);
        let out = f(&mut scratch[..]);
        self.write(offset, scratch);
        out
    }
}

/// A ring's pages: the owner's (writable, with its scratch buffer) or the
/// peer's mapping (read-only).
pub struct Region<B: Backing> {
    mem: Arc<B>,
    readonly: bool,
    scratch: RefCell<Vec<u8>>,
}

impl<B: Backing> SharedRegion for Region<B> {
    fn len(&self) -> usize {
        self.mem.bytes()
    }
    fn read_bytes(&self, offset: usize, buf: &mut [u8]) {
        self.mem.read(offset, buf)
    }
    fn write_bytes(&self, offset: usize, data: &[u8]) {
        assert!(!self.readonly, "write to a read-only mapping of the peer's ring");
        self.mem.write(offset, data)
    }
}

impl<B: Backing> OwnedRegion for Region<B> {
    fn fill<T>(&self, offset: usize, len: usize, f: impl FnOnce(&mut [u8]) -> T) -> T {
        self.mem.fill(offset, len, &mut self.scratch.borrow_mut(), f)
    }
}

enum Granted<B: Backing> {
    Page(AtomicPage),
    RegionPage(Arc<B>, usize),
}

struct Table<B: Backing> {
    next: GrantRef,
    grants: HashMap<GrantRef, (DomId, DomId, Granted<B>)>,
}

/// One domain's handle on the grant table both share.
pub struct Grants<B: Backing> {
    me: DomId,
    table: Arc<Mutex<Table<B>>>,
}

impl<B: Backing> Grants<B> {
    /// Handles for domains `a` and `b` on one new table.
    pub fn pair(a: DomId, b: DomId) -> (Self, Self) {
        let table = Arc::new(Mutex::new(Table { next: 1, grants: HashMap::new() }));
        (Grants { me: a, table: table.clone() }, Grants { me: b, table })
    }

    fn add(&mut self, to: DomId, what: Granted<B>) -> GrantRef {
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let r = t.next;
        t.next += 1;
        t.grants.insert(r, (self.me, to, what));
        r
    }

    fn lookup<T>(&self, from: DomId, gref: GrantRef, f: impl FnOnce(&Granted<B>) -> Option<T>) -> Result<T, XenError> {
        let t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        match t.grants.get(&gref) {
            Some((owner, to, what)) if *owner == from && *to == self.me => f(what).ok_or(EINVAL),
            _ => Err(EINVAL),
        }
    }
}

impl<B: Backing> GrantTable for Grants<B> {
    type Page = AtomicPage;
    type Mapped = AtomicPage;

    fn alloc_page(&mut self) -> Result<Self::Page, XenError> {
        Ok(AtomicPage::new())
    }

    fn free_page(&mut self, _page: Self::Page) {}

    fn grant(&mut self, page: &Self::Page, to: DomId, _readonly: bool) -> Result<GrantRef, XenError> {
        Ok(self.add(to, Granted::Page(page.clone())))
    }

    fn revoke(&mut self, gref: GrantRef) -> Result<(), XenError> {
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        t.grants.remove(&gref).map(drop).ok_or(EINVAL)
    }

    fn map(&mut self, from: DomId, gref: GrantRef, _readonly: bool) -> Result<Self::Mapped, XenError> {
        self.lookup(from, gref, |g| match g {
            Granted::Page(p) => Some(p.clone()),
            Granted::RegionPage(..) => None,
        })
    }

    fn unmap(&mut self, _mapped: Self::Mapped) -> Result<(), XenError> {
        Ok(())
    }
}

impl<B: Backing> RegionGrants for Grants<B> {
    type Region = Region<B>;
    type MappedRegion = Region<B>;

    fn alloc_region(&mut self, pages: usize) -> Result<Self::Region, XenError> {
        Ok(Region { mem: Arc::new(B::new(pages * PAGE_SIZE)), readonly: false, scratch: RefCell::new(Vec::new()) })
    }

    fn free_region(&mut self, _region: Self::Region) {}

    fn grant_region_page(
        &mut self,
        region: &Self::Region,
        index: usize,
        to: DomId,
        _readonly: bool,
    ) -> Result<GrantRef, XenError> {
        if index >= region.len() / PAGE_SIZE {
            return Err(EINVAL);
        }
        Ok(self.add(to, Granted::RegionPage(region.mem.clone(), index)))
    }

    /// The refs must be one region's pages, all of them, in order.
    fn map_region(&mut self, from: DomId, grefs: &[GrantRef], _readonly: bool) -> Result<Self::MappedRegion, XenError> {
        let mut mem: Option<Arc<B>> = None;
        for (i, &g) in grefs.iter().enumerate() {
            let m = self.lookup(from, g, |what| match what {
                Granted::RegionPage(m, index) if *index == i => Some(m.clone()),
                _ => None,
            })?;
            if mem.as_ref().is_some_and(|first| !Arc::ptr_eq(first, &m)) {
                return Err(EINVAL);
            }
            mem = Some(m);
        }
        let mem = mem.filter(|m| m.bytes() == grefs.len() * PAGE_SIZE).ok_or(EINVAL)?;
        Ok(Region { mem, readonly: true, scratch: RefCell::new(Vec::new()) })
    }

    fn unmap_region(&mut self, _region: Self::MappedRegion) -> Result<(), XenError> {
        Ok(())
    }
}

/// Event channels that count notifications and never block: the benchmark
/// polls (`Config::polling`), so none is sent while frames flow.
#[derive(Default)]
pub struct Events {
    pub notified: u64,
}

impl EventChannels for Events {
    fn alloc_unbound(&mut self, _remote: DomId) -> Result<Port, XenError> {
        Ok(1)
    }
    fn bind_interdomain(&mut self, _remote: DomId, _remote_port: Port) -> Result<Port, XenError> {
        Ok(1)
    }
    fn notify(&mut self, _port: Port) -> Result<(), XenError> {
        self.notified += 1;
        Ok(())
    }
    fn close(&mut self, _port: Port) -> Result<(), XenError> {
        Ok(())
    }
    fn take_pending(&mut self, _port: Port) -> bool {
        false
    }
    fn wait(&mut self, _timeout_ns: u64) -> bool {
        std::thread::yield_now();
        false
    }
}
