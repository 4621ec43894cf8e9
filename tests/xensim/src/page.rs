//! Simulated page memory. Both sides of a grant share one `Rc`, so a
//! write by either domain is seen by the other, like real shared memory.

use std::cell::RefCell;
use std::rc::Rc;

use xen_proto::iface::{DomId, GrantRef, SharedPage, PAGE_SIZE};

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
            panic!(
                "xensim: write through read-only grant mapping of page {}",
                self.id
            );
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
