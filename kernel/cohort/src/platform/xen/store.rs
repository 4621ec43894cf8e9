//! The xenstore ring Xen set up for this domain (`HVM_PARAM_STORE_PFN`
//! and `HVM_PARAM_STORE_EVTCHN`, or PV's start_info), as `xen_proto`'s
//! client sees it.

use super::{events, page::PhysPage};
use ::xen_abi::hypercall;
use xen_proto::iface::{XenError, XenstoreRing};

pub struct StoreRing {
    page: PhysPage,
    port: u32,
}

impl StoreRing {
    pub fn open() -> Result<StoreRing, &'static str> {
        let (addr, port) = super::startup().store()?;
        hypercall::evtchn_unmask(port).map_err(|_| "cannot unmask the xenstore event channel")?;
        events::open_port(port)?;
        // SAFETY: the xenstore page is a special page Xen keeps mapped for
        // the domain's life (as `Startup::store` checked).
        Ok(StoreRing { page: unsafe { PhysPage::new(addr) }, port })
    }
}

impl XenstoreRing for StoreRing {
    type Page = PhysPage;

    fn page(&self) -> &PhysPage {
        &self.page
    }

    fn notify(&mut self) -> Result<(), XenError> {
        hypercall::evtchn_send(self.port).map_err(|e| XenError::Errno(e.0 as i32))
    }

    fn wait(&mut self, timeout_ns: u64) -> bool {
        let arrived = events::wait_port(self.port, timeout_ns);
        events::take_pending(self.port);
        arrived
    }

    fn now_ns(&self) -> u64 {
        crate::clock::now_ns()
    }
}
