//! The simulated hypervisor: domains, a virtual clock, and the step that
//! lets simulated daemons (xenstored, test hooks) make progress.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use xen_proto::grant_refs::{RefAllocator, GNTTAB_NR_RESERVED_ENTRIES};
use xen_proto::iface::{DomId, GrantRef, Port};
use xen_proto::xenstore::Client;

use crate::evtchn::SimEvtchn;
use crate::gnttab::SimGnttab;
use crate::page::{new_mem, Mem, SimPage};
use crate::xenstored::{Xenstored, XsFault};
use crate::xsring::SimXsRing;

/// Per-domain resource limits.
#[derive(Clone, Copy, Debug)]
pub struct DomainConfig {
    /// Grant refs available (starting at `GNTTAB_NR_RESERVED_ENTRIES`).
    pub grant_refs: u32,
    /// Event-channel ports that may be open at once.
    pub max_ports: u32,
    /// Pages `alloc_page` may hand out at once.
    pub max_pages: usize,
}

impl Default for DomainConfig {
    fn default() -> Self {
        DomainConfig { grant_refs: 256, max_ports: 64, max_pages: 1024 }
    }
}

pub(crate) struct Grant {
    pub mem: Mem,
    pub page_id: u64,
    pub to: DomId,
    pub readonly: bool,
    pub maps: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChanState {
    Unbound { remote: DomId },
    Interdomain { remote: DomId, remote_port: Port },
}

pub(crate) struct Chan {
    pub state: ChanState,
    pub pending: bool,
}

pub(crate) struct Dom {
    pub config: DomainConfig,
    pub pages: BTreeMap<u64, Mem>,
    pub refs: RefAllocator,
    pub grants: BTreeMap<GrantRef, Grant>,
    /// Mappings this domain holds: handle -> (granter, ref).
    pub mappings: BTreeMap<u64, (DomId, GrantRef)>,
    pub ports: BTreeMap<Port, Chan>,
    pub xs_mem: Mem,
    /// xenstored moved bytes on our ring since the last wait.
    pub xs_kick: bool,
}

pub(crate) struct State {
    pub now_ns: u64,
    pub next_page_id: u64,
    pub next_handle: u64,
    pub domains: BTreeMap<DomId, Dom>,
    pub xenstored: Xenstored,
}

type Hook = Box<dyn FnMut()>;

/// The simulated machine. Cheap to clone: clones share everything.
#[derive(Clone)]
pub struct Xen {
    pub(crate) state: Rc<RefCell<State>>,
    hook: Rc<RefCell<Option<Hook>>>,
}

impl Default for Xen {
    fn default() -> Self {
        Xen::new()
    }
}

impl Xen {
    /// An empty machine: no domains, clock at 0.
    pub fn new() -> Xen {
        Xen {
            state: Rc::new(RefCell::new(State {
                now_ns: 0,
                next_page_id: 1,
                next_handle: 1,
                domains: BTreeMap::new(),
                xenstored: Xenstored::new(),
            })),
            hook: Rc::new(RefCell::new(None)),
        }
    }

    /// Creates domain `domid` with default limits. Panics if it exists.
    pub fn create_domain(&self, domid: DomId) -> Domain {
        self.create_domain_with(domid, DomainConfig::default())
    }

    /// Creates domain `domid` with explicit limits, its xenstore ring and
    /// home directory `/local/domain/<domid>` (owned by the domain).
    pub fn create_domain_with(&self, domid: DomId, config: DomainConfig) -> Domain {
        let mut st = self.state.borrow_mut();
        assert!(!st.domains.contains_key(&domid), "xensim: dom{domid} exists");
        let refs = RefAllocator::new(GNTTAB_NR_RESERVED_ENTRIES, config.grant_refs).expect("grant ref range");
        st.domains.insert(
            domid,
            Dom {
                config,
                pages: BTreeMap::new(),
                refs,
                grants: BTreeMap::new(),
                mappings: BTreeMap::new(),
                ports: BTreeMap::new(),
                xs_mem: new_mem(),
                xs_kick: false,
            },
        );
        st.xenstored.introduce(domid);
        drop(st);
        self.step();
        Domain { xen: self.clone(), domid }
    }

    /// Destroys a domain the way Xen does on death: its ports close (peers
    /// see them unbound), its grants vanish (peer mappings keep the memory
    /// until unmapped), its watches, transactions and home directory go.
    pub fn destroy_domain(&self, domid: DomId) {
        let mut st = self.state.borrow_mut();
        let dom = st.domains.remove(&domid).expect("xensim: no such domain");
        for chan in dom.ports.into_values() {
            if let ChanState::Interdomain { remote, remote_port } = chan.state {
                if let Some(c) = st.domains.get_mut(&remote).and_then(|d| d.ports.get_mut(&remote_port)) {
                    c.state = ChanState::Unbound { remote: domid };
                }
            }
        }
        // Its mappings of other domains' grants go away with it.
        for (from, gref) in dom.mappings.into_values() {
            if let Some(g) = st.domains.get_mut(&from).and_then(|d| d.grants.get_mut(&gref)) {
                g.maps = g.maps.saturating_sub(1);
            }
        }
        st.xenstored.release(domid);
        drop(st);
        self.step();
    }

    /// Another handle to existing domain `domid`. Panics if absent.
    pub fn domain(&self, domid: DomId) -> Domain {
        assert!(self.state.borrow().domains.contains_key(&domid), "xensim: no dom{domid}");
        Domain { xen: self.clone(), domid }
    }

    /// Domain ids in existence.
    pub fn domains(&self) -> Vec<DomId> {
        self.state.borrow().domains.keys().copied().collect()
    }

    /// The virtual clock, advanced only by waits that time out.
    pub fn now_ns(&self) -> u64 {
        self.state.borrow().now_ns
    }

    /// Lets xenstored serve every ring until nothing moves.
    pub fn step(&self) {
        let mut st = self.state.borrow_mut();
        let st = &mut *st;
        loop {
            let mut progress = false;
            let ids: Vec<DomId> = st.domains.keys().copied().collect();
            for id in ids {
                if let Some(dom) = st.domains.get_mut(&id) {
                    if st.xenstored.service(id, &dom.xs_mem) {
                        dom.xs_kick = true;
                        progress = true;
                    }
                }
            }
            if !progress {
                break;
            }
        }
    }

    /// Installs a closure run on every wait, after xenstored's step, so
    /// a simulated peer (e.g. a backend) can react while a client blocks.
    /// It must not wait itself (nested waits skip the hook).
    pub fn set_step_hook(&self, hook: impl FnMut() + 'static) {
        *self.hook.borrow_mut() = Some(Box::new(hook));
    }

    /// Removes the step hook.
    pub fn clear_step_hook(&self) {
        *self.hook.borrow_mut() = None;
    }

    /// One round of progress for a waiter: xenstored, then the hook,
    /// then xenstored again for whatever the hook sent.
    pub(crate) fn progress(&self) {
        self.step();
        // Taken out while running, so a nested wait cannot re-enter it.
        let taken = self.hook.borrow_mut().take();
        if let Some(mut hook) = taken {
            hook();
            let mut slot = self.hook.borrow_mut();
            if slot.is_none() {
                *slot = Some(hook);
            }
        }
        self.step();
    }

    pub(crate) fn advance_clock(&self, ns: u64) {
        let mut st = self.state.borrow_mut();
        st.now_ns = st.now_ns.saturating_add(ns);
    }

    /// Makes xenstored misbehave towards `domid` (see [`XsFault`]).
    pub fn set_xs_fault(&self, domid: DomId, fault: XsFault) {
        self.state.borrow_mut().xenstored.set_fault(domid, fault);
    }

    /// The next `n` transaction commits (any domain) fail with `EAGAIN`.
    pub fn force_eagain(&self, n: u32) {
        self.state.borrow_mut().xenstored.force_eagain = n;
    }

    /// Commits still to be failed by [`force_eagain`](Self::force_eagain).
    pub fn forced_eagain_left(&self) -> u32 {
        self.state.borrow().xenstored.force_eagain
    }

    /// A raw writable view of `domid`'s xenstore ring page, for tests that
    /// corrupt it.
    pub fn xs_page(&self, domid: DomId) -> SimPage {
        let st = self.state.borrow();
        let dom = st.domains.get(&domid).expect("xensim: no such domain");
        SimPage { mem: dom.xs_mem.clone(), id: 0, readonly: false }
    }

    /// Test setup backdoor: writes a node as dom0, firing watches.
    pub fn xs_write(&self, path: &str, value: &[u8]) {
        self.state.borrow_mut().xenstored.backdoor_write(path, value).unwrap_or_else(|e| panic!("xensim: xs_write {path}: {e}"));
        self.step();
    }

    /// Test backdoor: a writable view of the page `domid` granted as
    /// `gref`, whatever the grant allows, so a test can play a hostile
    /// domain scribbling on its own shared pages.
    pub fn granted_page(&self, domid: DomId, gref: GrantRef) -> Option<SimPage> {
        let st = self.state.borrow();
        let g = st.domains.get(&domid)?.grants.get(&gref)?;
        Some(SimPage { mem: g.mem.clone(), id: g.page_id, readonly: false })
    }

    /// Test inspection backdoor: a node's value, ignoring permissions.
    pub fn xs_read(&self, path: &str) -> Option<Vec<u8>> {
        self.state.borrow().xenstored.backdoor_read(path)
    }
}

/// Handles of one simulated domain.
#[derive(Clone)]
pub struct Domain {
    pub(crate) xen: Xen,
    pub(crate) domid: DomId,
}

impl Domain {
    /// The domain's id.
    pub fn domid(&self) -> DomId {
        self.domid
    }

    /// The machine this domain lives on.
    pub fn xen(&self) -> &Xen {
        &self.xen
    }

    /// This domain's event channels.
    pub fn evtchn(&self) -> SimEvtchn {
        SimEvtchn { xen: self.xen.clone(), domid: self.domid }
    }

    /// This domain's grant table.
    pub fn gnttab(&self) -> SimGnttab {
        SimGnttab { xen: self.xen.clone(), domid: self.domid }
    }

    /// This domain's xenstore ring (one client per domain at a time).
    pub fn xenstore(&self) -> SimXsRing {
        SimXsRing::new(self.xen.clone(), self.domid)
    }

    /// A xenstore client on this domain's ring.
    pub fn xenstore_client(&self) -> Client<SimXsRing> {
        Client::new(self.xenstore())
    }
}
