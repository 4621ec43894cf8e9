//! What protocol code needs from the platform. The kernel implements these
//! with hypercalls and real shared pages; `tests/xensim` implements them as
//! a simulated multi-domain Xen. Nothing here trusts the other domain:
//! everything read from a shared page may change between two reads.

pub type DomId = u16;
pub type Port = u32;
pub type GrantRef = u32;

/// `DOMID_SELF` from `public/xen.h`.
pub const DOMID_SELF: DomId = 0x7ff0;
pub const PAGE_SIZE: usize = 4096;

/// A 4 KiB page that another domain can read or write at any moment.
/// Offsets and lengths come from our own code (constants and checked
/// values): an access past the page is our bug, and implementations panic.
/// Ordering between accesses is the caller's business, with
/// `core::sync::atomic::fence`; each access is a single volatile access.
pub trait SharedPage {
    fn read_u32(&self, offset: usize) -> u32;
    fn write_u32(&self, offset: usize, value: u32);
    fn read_bytes(&self, offset: usize, buf: &mut [u8]);
    fn write_bytes(&self, offset: usize, data: &[u8]);
}

/// Errors of the hypervisor or of the simulation, as Xen reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XenError {
    /// A negative errno from a hypercall (e.g. -22 EINVAL).
    Errno(i32),
    /// A hypercall-level status that is not an errno (e.g. GNTST_*).
    Status(i16),
    /// No event or answer arrived before the deadline.
    Timeout,
    /// A bounded resource (grant refs, ports, pages) is exhausted.
    Exhausted,
}

/// Event channels of the calling domain.
pub trait EventChannels {
    /// A port another domain (`remote`) can bind to.
    fn alloc_unbound(&mut self, remote: DomId) -> Result<Port, XenError>;
    /// Binds to `remote_port` of domain `remote`, returning our local port.
    fn bind_interdomain(&mut self, remote: DomId, remote_port: Port) -> Result<Port, XenError>;
    fn notify(&mut self, port: Port) -> Result<(), XenError>;
    fn close(&mut self, port: Port) -> Result<(), XenError>;
    /// Clears and returns the pending flag of `port`.
    fn take_pending(&mut self, port: Port) -> bool;
    /// Waits until some event may be pending, at most `timeout_ns`.
    /// Returns false when the time ran out with nothing new.
    fn wait(&mut self, timeout_ns: u64) -> bool;
}

/// The calling domain's grant table, and mapping of other domains' grants.
pub trait GrantTable {
    /// A page of ours that can be granted.
    type Page: SharedPage;
    /// A page of another domain, mapped into ours.
    type Mapped: SharedPage;

    /// A zeroed page of our own memory.
    fn alloc_page(&mut self) -> Result<Self::Page, XenError>;
    fn free_page(&mut self, page: Self::Page);
    /// Lets `to` map `page` (read-only or read-write).
    fn grant(&mut self, page: &Self::Page, to: DomId, readonly: bool) -> Result<GrantRef, XenError>;
    /// Withdraws a grant. Fails with `Errno(-EBUSY)` (-16) while the peer
    /// still has it mapped: the ref stays allocated and must be retried.
    fn revoke(&mut self, gref: GrantRef) -> Result<(), XenError>;
    fn map(&mut self, from: DomId, gref: GrantRef, readonly: bool) -> Result<Self::Mapped, XenError>;
    fn unmap(&mut self, mapped: Self::Mapped) -> Result<(), XenError>;
}

/// Xenstore's ring page and its event channel, as the client sees them.
pub trait XenstoreRing {
    type Page: SharedPage;
    fn page(&self) -> &Self::Page;
    /// Tells xenstored that the ring changed.
    fn notify(&mut self) -> Result<(), XenError>;
    /// Waits for xenstored to make progress, at most `timeout_ns`; false on
    /// timeout.
    fn wait(&mut self, timeout_ns: u64) -> bool;
    /// A monotonic clock in ns (any origin): the client's timeouts are
    /// deadlines on it, so time spent reading what xenstored sends counts
    /// as much as time spent waiting.
    fn now_ns(&self) -> u64;
}

/// Several pages of shared memory seen as one contiguous byte range: the
/// data area of a ring. Offsets and lengths come from our own checked code;
/// an access past [`len`](Self::len) is our bug, and implementations panic.
/// What another domain can write may change between two reads.
pub trait SharedRegion {
    /// Length in bytes (a whole number of pages).
    fn len(&self) -> usize;
    /// Whether the region has no pages.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copies bytes out of the region.
    fn read_bytes(&self, offset: usize, buf: &mut [u8]);
    /// Copies bytes into the region.
    fn write_bytes(&self, offset: usize, data: &[u8]);
}

/// A region of our own pages, which other domains at most read.
pub trait OwnedRegion: SharedRegion {
    /// Lends `[offset, offset + len)` to `f`, which writes it in place (a
    /// frame built directly in ring memory). Sound because no other domain
    /// can write our pages: what `f` writes and reads back is what it gets.
    fn fill<T>(&self, offset: usize, len: usize, f: impl FnOnce(&mut [u8]) -> T) -> T;
}

/// Grants of multi-page regions, on top of [`GrantTable`].
pub trait RegionGrants: GrantTable {
    /// Pages of ours, contiguous in our address space.
    type Region: OwnedRegion;
    /// Another domain's pages mapped contiguously into ours.
    type MappedRegion: SharedRegion;

    /// `pages` zeroed pages of our own memory.
    fn alloc_region(&mut self, pages: usize) -> Result<Self::Region, XenError>;
    /// Gives the pages back. They must not be granted any more.
    fn free_region(&mut self, region: Self::Region);
    /// Lets `to` map page `index` of `region`.
    fn grant_region_page(&mut self, region: &Self::Region, index: usize, to: DomId, readonly: bool)
        -> Result<GrantRef, XenError>;
    /// Maps `grefs` of domain `from`, in order, as one contiguous region.
    /// On failure nothing stays mapped.
    fn map_region(&mut self, from: DomId, grefs: &[GrantRef], readonly: bool) -> Result<Self::MappedRegion, XenError>;
    /// Unmaps every page of `region`.
    fn unmap_region(&mut self, region: Self::MappedRegion) -> Result<(), XenError>;
}
