//! What the hostile-peer tests share: a guest running the channel
//! [`Manager`] over any grant table, a peer driven by hand that does what
//! no well-behaved Cohort guest does, and a grant table that lets the test
//! watch (and act in the middle of) every read the guest makes of the
//! peer's pages, as a peer running on another CPU could.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use channel::layout::{self, State};
use channel::offer::{offer_path, Offer};
use channel::{Config, Manager, Note};
use discovery::{Peer, PeerList};
use xen_proto::iface::{DomId, GrantRef, GrantTable, RegionGrants, SharedPage, SharedRegion, XenError};
use xen_proto::xenstore::Client;
use xensim::{Domain, DomainConfig, Sim, SimEvtchn, SimGnttab, SimMappedRegion, SimMapping, SimPage, SimRegion, SimXsRing};
use xenstore_wire::{Access, Permission};

pub const MS: u64 = 1_000_000;

pub fn mac(domid: DomId) -> [u8; 6] {
    [0x00, 0x16, 0x3e, 0xc0, 0x00, domid as u8]
}

/// A frame of `len` bytes from `from` to `to`: the MACs, then bytes that
/// depend on `seq`.
pub fn frame(from: DomId, to: DomId, seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&mac(to));
    f[6..12].copy_from_slice(&mac(from));
    for (i, b) in f[12..].iter_mut().enumerate() {
        *b = (seq as usize).wrapping_mul(31).wrapping_add(i) as u8;
    }
    f
}

/// A Cohort guest: its xenstore client and the channel manager.
pub struct Guest<G: RegionGrants + Clone> {
    pub dom: Domain,
    pub xs: Client<SimXsRing>,
    pub mgr: Manager<G, SimEvtchn>,
    pub notes: Vec<Note>,
}

pub fn domain(sim: &Sim, domid: DomId) -> Domain {
    sim.create_domain_with(domid, DomainConfig { grant_refs: 1024, max_ports: 64, max_pages: 4096 })
}

impl Guest<SimGnttab> {
    pub fn new(sim: &Sim, domid: DomId, config: Config) -> Self {
        let dom = domain(sim, domid);
        let gnt = dom.gnttab();
        Guest::on(dom, gnt, config)
    }
}

impl<G: RegionGrants + Clone> Guest<G> {
    /// A guest on `dom`, granting and mapping through `gnt`.
    pub fn on(dom: Domain, gnt: G, config: Config) -> Self {
        let xs = dom.xenstore_client();
        let mgr = Manager::new(gnt, dom.evtchn(), dom.domid(), config);
        Guest { dom, xs, mgr, notes: Vec::new() }
    }

    pub fn id(&self) -> DomId {
        self.dom.domid()
    }

    /// dom0 lists `peers` for us.
    pub fn list(&mut self, peers: &[DomId], now: u64) {
        let (list, _) = PeerList::new(peers.iter().map(|&d| Peer { domid: d, mac: mac(d) }).collect());
        self.mgr.set_peers(&mut self.xs, &list, now);
        self.notes.extend(self.mgr.take_notes());
    }

    pub fn service(&mut self, now: u64) {
        let mut fired = Vec::new();
        while let Ok(Some(ev)) = self.xs.next_watch_event() {
            if ev.token == channel::manager::WATCH_TOKEN {
                fired.push(ev.path);
            }
        }
        self.mgr.service(&mut self.xs, &fired, now);
        self.notes.extend(self.mgr.take_notes());
    }

    /// Whether the last word about `peer` is that its channel is up.
    pub fn up(&self, peer: DomId) -> bool {
        self.notes.iter().rev().find_map(|n| match n {
            Note::Up { peer: p, .. } if *p == peer => Some(true),
            Note::Down { peer: p, was_up: true, .. } if *p == peer => Some(false),
            _ => None,
        }) == Some(true)
    }

    pub fn offers_to(&self, peer: DomId) -> usize {
        self.notes.iter().filter(|n| **n == Note::Offered { peer }).count()
    }

    /// Receives from `peer` the way the switch does: a violation fails the
    /// channel.
    pub fn receive(&mut self, peer: DomId, now: u64) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        match self.mgr.channel(peer)?.recv_into(&mut out) {
            Ok(true) => Some(out),
            Ok(false) => None,
            Err(v) => {
                self.mgr.fail(peer, &format!("the peer broke the ring protocol: {v:?}"), now);
                self.notes.extend(self.mgr.take_notes());
                None
            }
        }
    }

    /// Closes everything and services until every grant is back (or
    /// panics after `rounds`).
    pub fn shutdown(&mut self, clock: &mut u64) {
        for _ in 0..100 {
            self.mgr.close_all(&mut self.xs, *clock);
            self.notes.extend(self.mgr.take_notes());
            if self.mgr.is_idle() {
                return;
            }
            *clock += 10 * MS;
        }
        panic!("dom{}: channels still draining: {:?}", self.id(), self.notes);
    }
}

/// Grant refs and pages `domid` holds now (from the leak report).
pub fn held(sim: &Sim, domid: DomId) -> (usize, usize) {
    let leaks = sim.domain_leaks(domid);
    let refs = leaks.iter().filter(|l| l.contains(": grant ref ")).count();
    let pages = leaks.iter().filter(|l| l.contains(": page ")).count();
    (refs, pages)
}

fn perm(domid: DomId, access: Access) -> Permission {
    Permission::new(domid, access)
}

/// A peer driven by hand: it grants a control page and a ring to `victim`
/// and offers them, then does whatever the test tells it.
pub struct Hostile {
    pub dom: Domain,
    pub xs: Client<SimXsRing>,
    gnt: SimGnttab,
    pub victim: DomId,
    pub control: Option<SimPage>,
    pub control_ref: GrantRef,
    pub ring: Option<SimRegion>,
    pub ring_refs: Vec<GrantRef>,
    pub ring_pages: u32,
    pub nonce: u32,
    /// Our mappings of the victim's pages.
    maps: Vec<SimMapping>,
    region_maps: Vec<SimMappedRegion>,
    /// Nonces of the victim's offers already mapped.
    seen: BTreeSet<u32>,
}

impl Hostile {
    /// Grants and offers a channel whose control page says `state`.
    pub fn new(sim: &Sim, domid: DomId, victim: DomId, ring_pages: u32, state: State) -> Hostile {
        let dom = domain(sim, domid);
        let mut gnt = dom.gnttab();
        let ring = gnt.alloc_region(ring_pages as usize).unwrap();
        let ring_refs: Vec<GrantRef> =
            (0..ring_pages as usize).map(|i| gnt.grant_region_page(&ring, i, victim, true).unwrap()).collect();
        let control = gnt.alloc_page().unwrap();
        let nonce = 4242;
        layout::init(&control, ring_pages, nonce, &ring_refs);
        control.write_u32(layout::STATE_AT, state.raw());
        let control_ref = gnt.grant(&control, victim, true).unwrap();
        let mut h = Hostile {
            xs: dom.xenstore_client(),
            dom,
            gnt,
            victim,
            control: Some(control),
            control_ref,
            ring: Some(ring),
            ring_refs,
            ring_pages,
            nonce,
            maps: Vec::new(),
            region_maps: Vec::new(),
            seen: BTreeSet::new(),
        };
        h.publish();
        h
    }

    pub fn id(&self) -> DomId {
        self.dom.domid()
    }

    /// (Re)writes our offer, readable by the victim only.
    pub fn publish(&mut self) {
        let (me, victim) = (self.id(), self.victim);
        let event_channel = None; // we are the higher domid in every test
        let offer = Offer {
            version: layout::LAYOUT_VERSION,
            nonce: self.nonce,
            control_ref: self.control_ref,
            ring_pages: self.ring_pages,
            event_channel,
            max_frame: channel::ring::ETH_FRAME,
        };
        let path = offer_path(me, victim);
        self.xs.write(&path, offer.to_value().as_bytes()).unwrap();
        self.xs.set_perms(&path, &[perm(me, Access::None), perm(victim, Access::Read)]).unwrap();
    }

    pub fn control(&self) -> &SimPage {
        self.control.as_ref().unwrap()
    }

    pub fn ring_page(&self, i: usize) -> &SimPage {
        &self.ring.as_ref().unwrap().pages()[i]
    }

    pub fn ring_size(&self) -> usize {
        self.ring_pages as usize * 4096
    }

    pub fn set_state(&self, state: State) {
        self.control().write_u32(layout::STATE_AT, state.raw());
    }

    /// Maps the pages of the victim's current offer to us, if it is one we
    /// have not mapped yet, and keeps them mapped. True if it mapped.
    pub fn map_victim(&mut self) -> bool {
        let Ok(value) = self.xs.read(&offer_path(self.victim, self.id())) else { return false };
        let Ok(offer) = Offer::parse(&value) else { return false };
        if !self.seen.insert(offer.nonce) {
            return false;
        }
        let Ok(control) = self.gnt.map(self.victim, offer.control_ref, true) else { return false };
        let grefs: Vec<GrantRef> = (0..offer.ring_pages as usize).map(|i| control.read_u32(layout::GREFS_AT + 4 * i)).collect();
        self.maps.push(control);
        if let Ok(r) = self.gnt.map_region(self.victim, &grefs, true) {
            self.region_maps.push(r);
        }
        true
    }

    /// Pages of the victim we map now.
    pub fn mapped(&self) -> usize {
        self.maps.len() + self.region_maps.iter().map(SharedRegion::len).sum::<usize>() / 4096
    }

    pub fn unmap_all(&mut self) {
        for m in self.maps.drain(..) {
            self.gnt.unmap(m).unwrap();
        }
        for r in self.region_maps.drain(..) {
            self.gnt.unmap_region(r).unwrap();
        }
    }

    /// Gives everything back: mappings, grants, pages, the offer.
    pub fn shutdown(&mut self) {
        self.unmap_all();
        for r in self.ring_refs.drain(..) {
            self.gnt.revoke(r).unwrap();
        }
        self.gnt.revoke(self.control_ref).unwrap();
        if let Some(ring) = self.ring.take() {
            self.gnt.free_region(ring);
        }
        if let Some(c) = self.control.take() {
            self.gnt.free_page(c);
        }
        let _ = self.xs.rm(&offer_path(self.id(), self.victim));
    }
}

/// A read the guest made of a peer's page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// `read_u32` of the peer's control page at this offset.
    Control(usize),
    /// Bytes of the peer's ring: offset, length.
    Ring(usize, usize),
}

type Hook = Rc<RefCell<Option<Box<dyn FnMut(Read)>>>>;

/// What every mapping made through a [`SpyGnttab`] shares.
#[derive(Clone, Default)]
pub struct Spy {
    /// Every read, in order.
    pub log: Rc<RefCell<Vec<Read>>>,
    /// Runs before each read: the peer acting meanwhile.
    hook: Hook,
}

impl Spy {
    pub fn set_hook(&self, f: impl FnMut(Read) + 'static) {
        *self.hook.borrow_mut() = Some(Box::new(f));
    }

    pub fn clear_hook(&self) {
        *self.hook.borrow_mut() = None;
    }

    /// Takes the reads logged so far.
    pub fn take(&self) -> Vec<Read> {
        std::mem::take(&mut *self.log.borrow_mut())
    }

    fn saw(&self, r: Read) {
        self.log.borrow_mut().push(r);
        let hook = self.hook.borrow_mut().take();
        if let Some(mut f) = hook {
            f(r);
            let mut slot = self.hook.borrow_mut();
            if slot.is_none() {
                *slot = Some(f);
            }
        }
    }
}

/// A grant table whose mappings of other domains' pages report every read
/// to a [`Spy`] (our own pages are plain).
#[derive(Clone)]
pub struct SpyGnttab {
    pub inner: SimGnttab,
    pub spy: Spy,
}

impl SpyGnttab {
    pub fn new(inner: SimGnttab) -> Self {
        SpyGnttab { inner, spy: Spy::default() }
    }
}

pub struct SpyMapping {
    inner: SimMapping,
    spy: Spy,
}

impl SharedPage for SpyMapping {
    fn read_u32(&self, offset: usize) -> u32 {
        self.spy.saw(Read::Control(offset));
        self.inner.read_u32(offset)
    }
    fn write_u32(&self, offset: usize, value: u32) {
        self.inner.write_u32(offset, value)
    }
    fn read_bytes(&self, offset: usize, buf: &mut [u8]) {
        self.spy.saw(Read::Control(offset));
        self.inner.read_bytes(offset, buf)
    }
    fn write_bytes(&self, offset: usize, data: &[u8]) {
        self.inner.write_bytes(offset, data)
    }
}

pub struct SpyRegion {
    inner: SimMappedRegion,
    spy: Spy,
}

impl SharedRegion for SpyRegion {
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn read_bytes(&self, offset: usize, buf: &mut [u8]) {
        self.spy.saw(Read::Ring(offset, buf.len()));
        self.inner.read_bytes(offset, buf)
    }
    fn write_bytes(&self, offset: usize, data: &[u8]) {
        self.inner.write_bytes(offset, data)
    }
}

impl GrantTable for SpyGnttab {
    type Page = SimPage;
    type Mapped = SpyMapping;

    fn alloc_page(&mut self) -> Result<SimPage, XenError> {
        self.inner.alloc_page()
    }
    fn free_page(&mut self, page: SimPage) {
        self.inner.free_page(page)
    }
    fn grant(&mut self, page: &SimPage, to: DomId, readonly: bool) -> Result<GrantRef, XenError> {
        self.inner.grant(page, to, readonly)
    }
    fn revoke(&mut self, gref: GrantRef) -> Result<(), XenError> {
        self.inner.revoke(gref)
    }
    fn map(&mut self, from: DomId, gref: GrantRef, readonly: bool) -> Result<SpyMapping, XenError> {
        Ok(SpyMapping { inner: self.inner.map(from, gref, readonly)?, spy: self.spy.clone() })
    }
    fn unmap(&mut self, mapped: SpyMapping) -> Result<(), XenError> {
        self.inner.unmap(mapped.inner)
    }
}

impl RegionGrants for SpyGnttab {
    type Region = SimRegion;
    type MappedRegion = SpyRegion;

    fn alloc_region(&mut self, pages: usize) -> Result<SimRegion, XenError> {
        self.inner.alloc_region(pages)
    }
    fn free_region(&mut self, region: SimRegion) {
        self.inner.free_region(region)
    }
    fn grant_region_page(&mut self, region: &SimRegion, index: usize, to: DomId, readonly: bool) -> Result<GrantRef, XenError> {
        self.inner.grant_region_page(region, index, to, readonly)
    }
    fn map_region(&mut self, from: DomId, grefs: &[GrantRef], readonly: bool) -> Result<SpyRegion, XenError> {
        Ok(SpyRegion { inner: self.inner.map_region(from, grefs, readonly)?, spy: self.spy.clone() })
    }
    fn unmap_region(&mut self, region: SpyRegion) -> Result<(), XenError> {
        self.inner.unmap_region(region.inner)
    }
}

/// A guest whose reads of peers' pages go through a [`Spy`].
pub fn spied_guest(sim: &Sim, domid: DomId, config: Config) -> (Guest<SpyGnttab>, Spy) {
    let dom = domain(sim, domid);
    let gnt = SpyGnttab::new(dom.gnttab());
    let spy = gnt.spy.clone();
    (Guest::on(dom, gnt, config), spy)
}
