//! Grant tables: granting our pages, mapping other domains' grants.

use xen_proto::iface::{DomId, GrantRef, GrantTable, RegionGrants, XenError};

use crate::page::{new_mem, SimMappedRegion, SimMapping, SimPage, SimRegion};
use crate::xen::{Grant, Xen};

const EINVAL: i32 = -22;
const EBUSY: i32 = -16;
/// `GNTST_*` from `public/grant_table.h`.
pub const GNTST_BAD_DOMAIN: i16 = -2;
/// Unrecognised or inappropriate grant ref.
pub const GNTST_BAD_GNTREF: i16 = -3;
/// Unrecognised mapping handle.
pub const GNTST_BAD_HANDLE: i16 = -4;
/// Not granted to the mapper, or read-only grant mapped writable.
pub const GNTST_PERMISSION_DENIED: i16 = -8;

/// One domain's grant table.
#[derive(Clone)]
pub struct SimGnttab {
    pub(crate) xen: Xen,
    pub(crate) domid: DomId,
}

impl SimGnttab {
    /// Refs this domain has granted and not revoked.
    pub fn granted(&self) -> Vec<GrantRef> {
        self.xen.state.borrow().domains[&self.domid].grants.keys().copied().collect()
    }
}

impl GrantTable for SimGnttab {
    type Page = SimPage;
    type Mapped = SimMapping;

    fn alloc_page(&mut self) -> Result<SimPage, XenError> {
        let mut st = self.xen.state.borrow_mut();
        let id = st.next_page_id;
        let dom = st.domains.get_mut(&self.domid).ok_or(XenError::Errno(EINVAL))?;
        if dom.pages.len() >= dom.config.max_pages {
            return Err(XenError::Exhausted);
        }
        let mem = new_mem();
        dom.pages.insert(id, mem.clone());
        st.next_page_id += 1;
        Ok(SimPage { mem, id, readonly: false })
    }

    /// Panics if the page is not ours or is still granted: handing memory
    /// back while a peer may map it is a bug worth stopping at.
    fn free_page(&mut self, page: SimPage) {
        let mut st = self.xen.state.borrow_mut();
        let me = self.domid;
        let dom = st.domains.get_mut(&me).expect("xensim: domain gone");
        if let Some((r, _)) = dom.grants.iter().find(|(_, g)| g.page_id == page.id) {
            panic!("xensim: dom{me} frees page {} still granted as ref {r}", page.id);
        }
        if dom.pages.remove(&page.id).is_none() {
            panic!("xensim: dom{me} frees page {} it does not own", page.id);
        }
    }

    fn grant(&mut self, page: &SimPage, to: DomId, readonly: bool) -> Result<GrantRef, XenError> {
        let mut st = self.xen.state.borrow_mut();
        let dom = st.domains.get_mut(&self.domid).ok_or(XenError::Errno(EINVAL))?;
        if !dom.pages.contains_key(&page.id) {
            return Err(XenError::Errno(EINVAL));
        }
        let r = dom.refs.alloc()?;
        let grant = Grant { mem: page.mem.clone(), page_id: page.id, to, readonly, maps: 0 };
        dom.grants.insert(r, grant);
        Ok(r)
    }

    fn revoke(&mut self, gref: GrantRef) -> Result<(), XenError> {
        let mut st = self.xen.state.borrow_mut();
        let dom = st.domains.get_mut(&self.domid).ok_or(XenError::Errno(EINVAL))?;
        let g = dom.grants.get(&gref).ok_or(XenError::Errno(EINVAL))?;
        if g.maps > 0 {
            return Err(XenError::Errno(EBUSY));
        }
        dom.grants.remove(&gref);
        dom.refs.free(gref)?;
        Ok(())
    }

    fn map(&mut self, from: DomId, gref: GrantRef, readonly: bool) -> Result<SimMapping, XenError> {
        let mut st = self.xen.state.borrow_mut();
        let me = self.domid;
        let handle = st.next_handle;
        let granter = st.domains.get_mut(&from).ok_or(XenError::Status(GNTST_BAD_DOMAIN))?;
        let g = granter.grants.get_mut(&gref).ok_or(XenError::Status(GNTST_BAD_GNTREF))?;
        if g.to != me || (g.readonly && !readonly) {
            return Err(XenError::Status(GNTST_PERMISSION_DENIED));
        }
        g.maps += 1;
        let page = SimPage { mem: g.mem.clone(), id: g.page_id, readonly };
        st.next_handle += 1;
        if let Some(d) = st.domains.get_mut(&me) {
            d.mappings.insert(handle, (from, gref));
        }
        Ok(SimMapping { page, handle, from, gref })
    }

    fn unmap(&mut self, mapped: SimMapping) -> Result<(), XenError> {
        let mut st = self.xen.state.borrow_mut();
        let dom = st.domains.get_mut(&self.domid).ok_or(XenError::Errno(EINVAL))?;
        let (from, gref) = dom.mappings.remove(&mapped.handle).ok_or(XenError::Status(GNTST_BAD_HANDLE))?;
        // The granter may have died meanwhile; then there is no count.
        if let Some(g) = st.domains.get_mut(&from).and_then(|d| d.grants.get_mut(&gref)) {
            g.maps = g.maps.saturating_sub(1);
        }
        Ok(())
    }
}

impl RegionGrants for SimGnttab {
    type Region = SimRegion;
    type MappedRegion = SimMappedRegion;

    fn alloc_region(&mut self, pages: usize) -> Result<SimRegion, XenError> {
        let mut region = SimRegion { pages: Vec::with_capacity(pages) };
        for _ in 0..pages {
            match self.alloc_page() {
                Ok(p) => region.pages.push(p),
                Err(e) => {
                    self.free_region(region);
                    return Err(e);
                }
            }
        }
        Ok(region)
    }

    fn free_region(&mut self, region: SimRegion) {
        for p in region.pages {
            self.free_page(p);
        }
    }

    fn grant_region_page(&mut self, region: &SimRegion, index: usize, to: DomId, readonly: bool) -> Result<GrantRef, XenError> {
        let page = region.pages.get(index).ok_or(XenError::Errno(EINVAL))?;
        self.grant(page, to, readonly)
    }

    fn map_region(&mut self, from: DomId, grefs: &[GrantRef], readonly: bool) -> Result<SimMappedRegion, XenError> {
        let mut maps = Vec::with_capacity(grefs.len());
        for &g in grefs {
            match self.map(from, g, readonly) {
                Ok(m) => maps.push(m),
                Err(e) => {
                    let _ = self.unmap_region(SimMappedRegion { maps });
                    return Err(e);
                }
            }
        }
        Ok(SimMappedRegion { maps })
    }

    fn unmap_region(&mut self, region: SimMappedRegion) -> Result<(), XenError> {
        let mut first = Ok(());
        for m in region.maps {
            if let Err(e) = self.unmap(m) {
                first = first.and(Err(e));
            }
        }
        first
    }
}
