//! Simulated page memory. Both sides of a grant share one `Rc`, so a
//! write by either domain is seen by the other, like real shared memory.

use std::cell::RefCell;
use std::rc::Rc;

use xen_proto::iface::{DomId, GrantRef, SharedPage, SharedRegion, PAGE_SIZE};

/// The bytes of one page, shared by every view of it.
pub(crate) type Mem = Rc<RefCell<Box<[u8; PAGE_SIZE]>>>;

pub(crate) fn new_mem() -> Mem {
    Rc::new(RefCell::new(Box::new([0; PAGE_SIZE])))
}

/// A view of a simulated page: a domain's own page, or (through
/// [`SimMapping`]) another domain's granted page.
///
/// Writes through a read-only view panic, as a page fault would: a test
/// that writes to a read-only grant fails loudly instead of silently
/// corrupting the granter's memory.
pub struct SimPage {
    pub(crate) mem: Mem,
    pub(crate) id: u64,
    pub(crate) readonly: bool,
}

impl SimPage {
    /// Page number, unique within the simulation (0 for xenstore rings).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether writes through this view are refused.
    pub fn is_readonly(&self) -> bool {
        self.readonly
    }

    fn check_write(&self) {
        if self.readonly {
            panic!("xensim: write through read-only grant mapping of page {}", self.id);
        }
    }
}

// Out-of-range offsets come from the caller's own code (see
// `SharedPage`), so slice indexing panics are the intended behaviour.
impl SharedPage for SimPage {
    fn read_u32(&self, offset: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.mem.borrow()[offset..offset + 4]);
        u32::from_le_bytes(b)
    }

    fn write_u32(&self, offset: usize, value: u32) {
        self.check_write();
        self.mem.borrow_mut()[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    }

    fn read_bytes(&self, offset: usize, buf: &mut [u8]) {
        buf.copy_from_slice(&self.mem.borrow()[offset..offset + buf.len()]);
    }

    fn write_bytes(&self, offset: usize, data: &[u8]) {
        self.check_write();
        self.mem.borrow_mut()[offset..offset + data.len()].copy_from_slice(data);
    }
}

/// Another domain's granted page mapped into ours.
pub struct SimMapping {
    pub(crate) page: SimPage,
    pub(crate) handle: u64,
    pub(crate) from: DomId,
    pub(crate) gref: GrantRef,
}

impl SimMapping {
    /// The granting domain.
    pub fn from(&self) -> DomId {
        self.from
    }

    /// The grant ref that was mapped.
    pub fn gref(&self) -> GrantRef {
        self.gref
    }

    /// Whether the mapping is read-only.
    pub fn is_readonly(&self) -> bool {
        self.page.readonly
    }
}

impl SharedPage for SimMapping {
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

/// Page-spanning copies over a list of page views (the sim's pages are not
/// contiguous, so regions copy where the kernel would lend memory).
fn region_read<P: SharedPage>(pages: &[P], mut offset: usize, buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        let (page, at) = (offset / PAGE_SIZE, offset % PAGE_SIZE);
        let n = (PAGE_SIZE - at).min(buf.len() - done);
        pages[page].read_bytes(at, &mut buf[done..done + n]);
        done += n;
        offset += n;
    }
}

fn region_write<P: SharedPage>(pages: &[P], mut offset: usize, data: &[u8]) {
    let mut done = 0;
    while done < data.len() {
        let (page, at) = (offset / PAGE_SIZE, offset % PAGE_SIZE);
        let n = (PAGE_SIZE - at).min(data.len() - done);
        pages[page].write_bytes(at, &data[done..done + n]);
        done += n;
        offset += n;
    }
}

fn check_range(len: usize, offset: usize, n: usize) {
    assert!(offset.checked_add(n).is_some_and(|end| end <= len), "xensim: region access {offset}+{n} past its {len} bytes");
}

/// Pages of one domain used as one region (`RegionGrants::alloc_region`).
pub struct SimRegion {
    pub(crate) pages: Vec<SimPage>,
}

impl SimRegion {
    /// The page views, in order.
    pub fn pages(&self) -> &[SimPage] {
        &self.pages
    }
}

impl SharedRegion for SimRegion {
    fn len(&self) -> usize {
        self.pages.len() * PAGE_SIZE
    }
    fn read_bytes(&self, offset: usize, buf: &mut [u8]) {
        check_range(self.len(), offset, buf.len());
        region_read(&self.pages, offset, buf);
    }
    fn write_bytes(&self, offset: usize, data: &[u8]) {
        check_range(self.len(), offset, data.len());
        region_write(&self.pages, offset, data);
    }
}

impl xen_proto::iface::OwnedRegion for SimRegion {
    fn fill<T>(&self, offset: usize, len: usize, f: impl FnOnce(&mut [u8]) -> T) -> T {
        check_range(self.len(), offset, len);
        let mut buf = vec![0u8; len];
        region_read(&self.pages, offset, &mut buf);
        let out = f(&mut buf);
        region_write(&self.pages, offset, &buf);
        out
    }
}

/// Another domain's pages mapped as one region.
pub struct SimMappedRegion {
    pub(crate) maps: Vec<SimMapping>,
}

impl SharedRegion for SimMappedRegion {
    fn len(&self) -> usize {
        self.maps.len() * PAGE_SIZE
    }
    fn read_bytes(&self, offset: usize, buf: &mut [u8]) {
        check_range(self.len(), offset, buf.len());
        region_read(&self.maps, offset, buf);
    }
    fn write_bytes(&self, offset: usize, data: &[u8]) {
        check_range(self.len(), offset, data.len());
        region_write(&self.maps, offset, data);
    }
}
