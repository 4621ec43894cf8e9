//! Leak reports: everything a domain still holds that a well-behaved
//! driver would have given back.

use xen_proto::iface::DomId;

use crate::xen::{ChanState, Xen};

impl Xen {
    /// Descriptions of everything `domid` still holds: granted refs,
    /// mappings, open ports, pages, watches, open transactions.
    pub fn domain_leaks(&self, domid: DomId) -> Vec<String> {
        let st = self.state.borrow();
        let Some(dom) = st.domains.get(&domid) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (r, g) in &dom.grants {
            out.push(format!("grant ref {r} (page {}) still granted to dom{} (mapped {} times)", g.page_id, g.to, g.maps));
        }
        for (h, (from, r)) in &dom.mappings {
            out.push(format!("mapping {h} of dom{from} grant ref {r} still mapped"));
        }
        for (p, c) in &dom.ports {
            let what = match c.state {
                ChanState::Unbound { remote } => format!("unbound for dom{remote}"),
                ChanState::Interdomain { remote, remote_port } => {
                    format!("bound to dom{remote} port {remote_port}")
                }
            };
            out.push(format!("event channel port {p} still open ({what})"));
        }
        for id in dom.pages.keys() {
            out.push(format!("page {id} allocated but not freed"));
        }
        out.extend(st.xenstored.leaks(domid));
        out.into_iter().map(|l| format!("dom{domid}: {l}")).collect()
    }

    /// Leaks of every domain.
    pub fn leaks(&self) -> Vec<String> {
        self.domains().into_iter().flat_map(|d| self.domain_leaks(d)).collect()
    }

    /// Panics listing every leak of `domid`.
    pub fn assert_domain_no_leaks(&self, domid: DomId) {
        report(self.domain_leaks(domid));
    }

    /// Panics listing every leak of every domain.
    pub fn assert_no_leaks(&self) {
        report(self.leaks());
    }
}

fn report(leaks: Vec<String>) {
    if !leaks.is_empty() {
        panic!("xensim: leaked resources:\n  {}", leaks.join("\n  "));
    }
}
