//! A domain's end of its xenstore ring.

use xen_proto::iface::{DomId, XenError, XenstoreRing};

use crate::page::SimPage;
use crate::xen::Xen;

/// The guest side of a domain's xenstore ring page.
pub struct SimXsRing {
    xen: Xen,
    domid: DomId,
    page: SimPage,
}

impl SimXsRing {
    pub(crate) fn new(xen: Xen, domid: DomId) -> SimXsRing {
        let page = xen.xs_page(domid);
        SimXsRing { xen, domid, page }
    }

    /// The domain this ring belongs to.
    pub fn domid(&self) -> DomId {
        self.domid
    }

    /// The machine.
    pub fn xen(&self) -> &Xen {
        &self.xen
    }
}

impl XenstoreRing for SimXsRing {
    type Page = SimPage;

    fn page(&self) -> &SimPage {
        &self.page
    }

    /// xenstored runs synchronously on notification.
    fn notify(&mut self) -> Result<(), XenError> {
        self.xen.step();
        Ok(())
    }

    /// True if xenstored moved bytes on our ring since the last wait;
    /// otherwise the virtual clock advances by `timeout_ns`.
    fn wait(&mut self, timeout_ns: u64) -> bool {
        self.xen.progress();
        let kicked = {
            let mut st = self.xen.state.borrow_mut();
            st.domains.get_mut(&self.domid).is_some_and(|d| std::mem::take(&mut d.xs_kick))
        };
        if !kicked {
            self.xen.advance_clock(timeout_ns);
        }
        kicked
    }

    /// The virtual clock.
    fn now_ns(&self) -> u64 {
        self.xen.now_ns()
    }
}
