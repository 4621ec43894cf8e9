//! The xenstore ring Xen set up for this domain (`HVM_PARAM_STORE_PFN`,
//! `HVM_PARAM_STORE_EVTCHN`), as `xen_proto`'s client sees it.

use super::{events, page::PhysPage};
use ::xen_abi::abi::ops::hvmop;
use ::xen_abi::hypercall;
use xen_proto::iface::{XenError, XenstoreRing};

pub struct StoreRing {
    page: PhysPage,
    port: u32,
}

impl StoreRing {
    pub fn open() -> Result<StoreRing, &'static str> {
        let pfn = hypercall::hvm_get_param(hvmop::PARAM_STORE_PFN).map_err(|_| "no HVM_PARAM_STORE_PFN")?;
        let port = hypercall::hvm_get_param(hvmop::PARAM_STORE_EVTCHN).map_err(|_| "no HVM_PARAM_STORE_EVTCHN")?;
        let addr = pfn.checked_mul(4096).filter(|&a| a != 0 && a < crate::arch::paging::IDENTITY_MAP_END);
        let addr = addr.ok_or("xenstore page outside the identity map")?;
        let port = u32::try_from(port).map_err(|_| "bad xenstore event channel")?;
        hypercall::evtchn_unmask(port).map_err(|_| "cannot unmask the xenstore event channel")?;
        events::open_port(port)?;
        // SAFETY: the xenstore page is a special page Xen keeps mapped in
        // our physmap for the domain's life, below 4 GiB (checked).
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
