//! A deterministic, single-threaded simulated Xen for host tests of
//! `xen-proto`.
//!
//! [`Xen`] holds domains; each [`Domain`] hands out implementations of the
//! `xen_proto::iface` traits: [`SimEvtchn`], [`SimGnttab`] and
//! [`SimXsRing`]. Pages are shared memory ([`SimPage`]): a peer's mapping
//! is the same bytes. An in-memory xenstored serves every domain's ring
//! in the real wire format, with permission checks, watches,
//! transactions and fault knobs ([`XsFault`], [`Xen::force_eagain`]).
//!
//! Time is virtual: waits that find nothing advance [`Xen::now_ns`] by
//! their timeout, so timeout tests run instantly.
//!
//! Wrap each test in a [`Sim`]: dropping it asserts that no domain leaked
//! grants, mappings, ports, pages, watches or transactions.

mod evtchn;
mod gnttab;
mod leaks;
mod netback;
mod page;
mod xen;
mod xenstored;
mod xsring;

pub use evtchn::SimEvtchn;
pub use gnttab::{SimGnttab, GNTST_BAD_DOMAIN, GNTST_BAD_GNTREF, GNTST_BAD_HANDLE, GNTST_PERMISSION_DENIED};
pub use netback::{FrontendFeatures, Netback, NetbackFault, NetbackFeatures, NetbackStats, RxPacket, TxGso, TxPacket};
pub use page::{SimMappedRegion, SimMapping, SimPage, SimRegion};
pub use xen::{Domain, DomainConfig, Xen};
pub use xenstored::XsFault;
pub use xsring::SimXsRing;

/// A [`Xen`] whose drop asserts no leaks (unless the test is already
/// panicking, so the first failure is the one reported).
pub struct Sim {
    xen: Xen,
}

impl Sim {
    /// A fresh machine.
    pub fn new() -> Sim {
        Sim { xen: Xen::new() }
    }
}

impl Default for Sim {
    fn default() -> Self {
        Sim::new()
    }
}

impl std::ops::Deref for Sim {
    type Target = Xen;
    fn deref(&self) -> &Xen {
        &self.xen
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.xen.assert_no_leaks();
        }
    }
}
