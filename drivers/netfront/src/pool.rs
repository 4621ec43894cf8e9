//! Buffer pages and ring pages with the grants that give the backend
//! access to them, and the hypervisor side of a vif.

use alloc::vec::Vec;

use xen_proto::iface::{DomId, EventChannels, GrantRef, GrantTable, Port, SharedPage, XenError};

use crate::counters::Counters;
use crate::ring::{self, FrontRing};

const EBUSY: i32 = -16;

/// Pages with, for each, the grant currently giving the backend access.
pub(crate) struct Pool<P> {
    pub(crate) pages: Vec<Option<P>>,
    pub(crate) grants: Vec<Option<GrantRef>>,
}

impl<P: SharedPage> Pool<P> {
    pub(crate) fn new() -> Self {
        Pool { pages: Vec::new(), grants: Vec::new() }
    }

    pub(crate) fn page(&self, i: u16) -> Option<&P> {
        self.pages.get(usize::from(i)).and_then(Option::as_ref)
    }

    /// Allocates `n` pages, none granted yet.
    pub(crate) fn fill<G: GrantTable<Page = P>>(&mut self, gnt: &mut G, n: u16) -> Result<(), XenError> {
        for _ in 0..n {
            let p = gnt.alloc_page()?;
            self.pages.push(Some(p));
            self.grants.push(None);
        }
        Ok(())
    }

    /// Revokes buffer `i`'s grant if any. False if the backend still maps
    /// it (the grant is kept).
    pub(crate) fn revoke<G: GrantTable<Page = P>>(&mut self, gnt: &mut G, i: u16, c: &mut Counters) -> bool {
        let Some(slot) = self.grants.get_mut(usize::from(i)) else {
            return true;
        };
        let Some(gref) = *slot else {
            return true;
        };
        match gnt.revoke(gref) {
            Err(XenError::Errno(EBUSY)) => {
                c.revoke_busy += 1;
                false
            }
            // Ok, or the ref is already gone: either way not granted.
            _ => {
                *slot = None;
                true
            }
        }
    }

    /// Revokes everything and frees every page it can; returns how many
    /// grants are still mapped by the backend (their pages are kept).
    pub(crate) fn release<G: GrantTable<Page = P>>(&mut self, gnt: &mut G, c: &mut Counters) -> usize {
        let mut busy = 0;
        for i in 0..self.pages.len() {
            if !self.revoke(gnt, i as u16, c) {
                busy += 1;
                continue;
            }
            if let Some(p) = self.pages[i].take() {
                gnt.free_page(p);
            }
        }
        if busy == 0 {
            self.pages.clear();
            self.grants.clear();
        }
        busy
    }

    /// Retries the revocation of each quarantined buffer; those that
    /// succeed are handed to `free`.
    pub(crate) fn retry_quarantine<G: GrantTable<Page = P>>(
        &mut self,
        gnt: &mut G,
        c: &mut Counters,
        quarantine: &mut Vec<u16>,
        mut free: impl FnMut(u16),
    ) {
        let mut i = 0;
        while i < quarantine.len() {
            let buf = quarantine[i];
            if self.revoke(gnt, buf, c) {
                quarantine.swap_remove(i);
                free(buf);
            } else {
                i += 1;
            }
        }
    }
}

/// One shared ring page and its grant.
pub(crate) struct RingPage<P> {
    pub(crate) page: Option<P>,
    pub(crate) gref: Option<GrantRef>,
    pub(crate) front: FrontRing,
}

impl<P: SharedPage> RingPage<P> {
    pub(crate) fn new(size: u32) -> Self {
        RingPage { page: None, gref: None, front: FrontRing::new(size) }
    }

    pub(crate) fn setup<G: GrantTable<Page = P>>(&mut self, gnt: &mut G, to: DomId) -> Result<GrantRef, XenError> {
        let page = gnt.alloc_page()?;
        ring::init_shared(&page);
        let gref = gnt.grant(&page, to, false);
        self.page = Some(page);
        let gref = gref?;
        self.gref = Some(gref);
        Ok(gref)
    }

    /// False if the backend still maps the ring.
    pub(crate) fn release<G: GrantTable<Page = P>>(&mut self, gnt: &mut G, c: &mut Counters) -> bool {
        if let Some(gref) = self.gref {
            if gnt.revoke(gref) == Err(XenError::Errno(EBUSY)) {
                c.revoke_busy += 1;
                return false;
            }
            self.gref = None;
        }
        if let Some(p) = self.page.take() {
            gnt.free_page(p);
        }
        true
    }

    /// Drains the ring's responses into `handle` (see
    /// [`FrontRing::drain_responses`]). Err if the backend published more
    /// responses than there were requests: the ring is unusable.
    pub(crate) fn drain<const N: usize>(&mut self, handle: impl FnMut(u32, &[u8; N])) -> Result<(), ring::Overflow> {
        match self.page.as_ref() {
            Some(page) => self.front.drain_responses(page, handle),
            None => Ok(()),
        }
    }
}

/// The hypervisor side: grant table, event channel, peer.
pub(crate) struct Link<G, E> {
    pub(crate) gnt: G,
    pub(crate) evt: E,
    pub(crate) port: Option<Port>,
    pub(crate) backend_id: DomId,
    /// Connected and the backend has not broken the ring protocol.
    pub(crate) up: bool,
}

impl<G: GrantTable, E: EventChannels> Link<G, E> {
    pub(crate) fn notify(&mut self, c: &mut Counters) {
        if let Some(port) = self.port {
            if self.evt.notify(port).is_ok() {
                c.notifications_sent += 1;
            }
        }
    }
}
