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
}
