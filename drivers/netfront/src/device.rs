//! The driver: rings, buffers, grants and the event channel of one vif.
//!
//! Every buffer is one whole 4 KiB page, so no frame ever crosses a page
//! boundary. A buffer is granted to the backend only while a request
//! for it is outstanding (tx read-only, rx read-write) and revoked when
//! the response arrives; a revocation the hypervisor refuses (the
//! backend still maps the page) puts the buffer in quarantine, retried
//! on every poll, never reused until the revocation succeeds.

use alloc::collections::VecDeque;
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use xen_proto::iface::{
    DomId, EventChannels, GrantRef, GrantTable, Port, SharedPage, XenError, XenstoreRing,
};
use xen_proto::xenbus::{read_state, switch_state, wait_for_state, XenbusState};
use xen_proto::xenstore::Client;

use crate::counters::Counters;
use crate::error::{Error, TxError};
use crate::ring::{self, FrontRing, RX_ENTRY_SIZE, RX_RING_SIZE, TX_ENTRY_SIZE, TX_RING_SIZE};
use crate::wire::{self, RxReject, RxRequest, RxResponse, TxRequest, TxResponse, TxStatus};
use crate::xenbus::{self as xb, Published, VifNodes};

const EBUSY: i32 = -16;

/// Buffer counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Receive pages kept posted (1..=256). Each holds a grant while
    /// posted.
    pub rx_buffers: u16,
    /// Transmit pages (1..=256); each holds a grant while in flight.
    pub tx_buffers: u16,
}

impl Default for Config {
    /// Full rings: 256 + 256 buffer pages, so up to 514 grants and pages
    /// (2 MiB) with the two ring pages.
    fn default() -> Self {
        Config {
            rx_buffers: RX_RING_SIZE as u16,
            tx_buffers: TX_RING_SIZE as u16,
        }
    }
}

impl Config {
    fn valid(&self) -> bool {
        (1..=RX_RING_SIZE).contains(&u32::from(self.rx_buffers))
            && (1..=TX_RING_SIZE).contains(&u32::from(self.tx_buffers))
    }
}

/// Pages with, for each, the grant currently giving the backend access.
struct Pool<P> {
    pages: Vec<Option<P>>,
    grants: Vec<Option<GrantRef>>,
}

impl<P: SharedPage> Pool<P> {
    fn new() -> Self {
        Pool {
            pages: Vec::new(),
            grants: Vec::new(),
        }
    }

    fn page(&self, i: u16) -> Option<&P> {
        self.pages.get(usize::from(i)).and_then(Option::as_ref)
    }

    /// Revokes buffer `i`'s grant if any. False if the backend still maps
    /// it (the grant is kept).
    fn revoke<G: GrantTable<Page = P>>(&mut self, gnt: &mut G, i: u16, c: &mut Counters) -> bool {
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
    fn release<G: GrantTable<Page = P>>(&mut self, gnt: &mut G, c: &mut Counters) -> usize {
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
}

/// One shared ring page and its grant.
struct RingPage<P> {
    page: Option<P>,
    gref: Option<GrantRef>,
    front: FrontRing,
}

impl<P: SharedPage> RingPage<P> {
    fn new(size: u32) -> Self {
        RingPage {
            page: None,
            gref: None,
            front: FrontRing::new(size),
        }
    }

    fn setup<G: GrantTable<Page = P>>(
        &mut self,
        gnt: &mut G,
        to: DomId,
    ) -> Result<GrantRef, XenError> {
        let page = gnt.alloc_page()?;
        ring::init_shared(&page);
        let gref = gnt.grant(&page, to, false);
        self.page = Some(page);
        let gref = gref?;
        self.gref = Some(gref);
        Ok(gref)
    }

    /// False if the backend still maps the ring.
    fn release<G: GrantTable<Page = P>>(&mut self, gnt: &mut G, c: &mut Counters) -> bool {
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
}

/// The hypervisor side: grant table, event channel, peer.
struct Link<G, E> {
    gnt: G,
    evt: E,
    port: Option<Port>,
    backend_id: DomId,
    /// Connected and the backend has not broken the ring protocol.
    up: bool,
}

impl<G: GrantTable, E: EventChannels> Link<G, E> {
    fn notify(&mut self, c: &mut Counters) {
        if let Some(port) = self.port {
            if self.evt.notify(port).is_ok() {
                c.notifications_sent += 1;
            }
        }
    }
}

struct Tx<P> {
    ring: RingPage<P>,
    pool: Pool<P>,
    /// Frame length per buffer id while its request is in flight.
    in_flight: Vec<Option<u16>>,
    /// Free buffer ids, oldest first: an answered id is reused as late
    /// as possible, so a duplicate response is caught as such.
    free: VecDeque<u16>,
    /// Answered buffers whose grant the backend still maps.
    quarantine: Vec<u16>,
    scratch: Vec<u8>,
}

/// A received frame waiting for the stack, in a buffer no longer granted.
#[derive(Clone, Copy)]
struct Ready {
    buf: u16,
    offset: usize,
    len: usize,
}

struct Rx<P> {
    ring: RingPage<P>,
    pool: Pool<P>,
    free: Vec<u16>,
    /// Buffer posted in each ring slot. As in Linux netfront the request
    /// id is the slot number, and netif.h requires the backend to answer
    /// in the slot of the request (extra-info slots carry no id at all):
    /// the slot says which buffer a response consumed, and an id that
    /// differs from the slot is a protocol violation.
    posted: Vec<Option<u16>>,
    ready: VecDeque<Ready>,
    quarantine: Vec<u16>,
    /// Dropping the remaining slots of a multi-slot packet.
    discarding: bool,
    /// The next slot is an extra-info slot.
    extra_next: bool,
    scratch: Vec<u8>,
}

/// Where we are in the xenbus life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Resources allocated, not (yet) published.
    Setup,
    /// Published `Connected` (the backend may or may not have followed).
    Published,
    /// Torn down; `state` walked back to `Initialising`.
    Closed,
}

/// A Xen network frontend over grant table `G` and event channels `E`.
pub struct Netfront<G: GrantTable, E: EventChannels> {
    link: Link<G, E>,
    tx: Tx<G::Page>,
    rx: Rx<G::Page>,
    counters: Counters,
    nodes: VifNodes,
    config: Config,
    phase: Phase,
}

impl<G: GrantTable, E: EventChannels> Netfront<G, E> {
    /// Connects to the backend of `vif_path` (e.g. `device/vif/0`,
    /// relative to our home, or absolute) with [`Config::default`].
    /// `timeout_ns` bounds each wait for the backend.
    pub fn connect<R: XenstoreRing>(
        client: &mut Client<R>,
        gnt: G,
        evt: E,
        vif_path: &str,
        timeout_ns: u64,
    ) -> Result<Self, Error> {
        Self::connect_with(client, gnt, evt, vif_path, Config::default(), timeout_ns)
    }

    /// [`connect`](Self::connect) with explicit buffer counts.
    ///
    /// Reads `backend`, `backend-id`, `mac`; waits for the backend's
    /// `InitWait`; checks `feature-rx-copy`; allocates and grants both
    /// rings and the rx buffers, allocates an unbound port; publishes the
    /// keys of [`PUBLISHED_KEYS`](crate::xenbus::PUBLISHED_KEYS) with
    /// `state = Connected` in one transaction; waits for the backend's
    /// `Connected`. On failure everything allocated is given back (and
    /// the published state walked back to `Initialising`).
    pub fn connect_with<R: XenstoreRing>(
        client: &mut Client<R>,
        gnt: G,
        evt: E,
        vif_path: &str,
        config: Config,
        timeout_ns: u64,
    ) -> Result<Self, Error> {
        if !config.valid() {
            return Err(Error::BadConfig);
        }
        let vif_path = vif_path.trim_end_matches('/');
        let nodes = xb::read_vif(client, vif_path)?;
        let fe_state = format!("{vif_path}/state");
        let be_state = format!("{}/state", nodes.backend);
        // A previous instance may have left its state behind.
        match read_state(client, &fe_state)? {
            XenbusState::Initialising | XenbusState::Unknown => {}
            _ => switch_state(client, &fe_state, XenbusState::Initialising)?,
        }
        wait_for_state(client, &be_state, &[XenbusState::InitWait], timeout_ns)?;
        if !xb::backend_has_rx_copy(client, &nodes.backend)? {
            return Err(Error::NoRxCopy);
        }
        let mut nf = Netfront {
            link: Link {
                gnt,
                evt,
                port: None,
                backend_id: nodes.backend_id,
                up: false,
            },
            tx: Tx {
                ring: RingPage::new(TX_RING_SIZE),
                pool: Pool::new(),
                in_flight: Vec::new(),
                free: VecDeque::new(),
                quarantine: Vec::new(),
                scratch: Vec::new(),
            },
            rx: Rx {
                ring: RingPage::new(RX_RING_SIZE),
                pool: Pool::new(),
                free: Vec::new(),
                posted: vec![None; RX_RING_SIZE as usize],
                ready: VecDeque::new(),
                quarantine: Vec::new(),
                discarding: false,
                extra_next: false,
                scratch: Vec::new(),
            },
            counters: Counters::default(),
            nodes,
            config,
            phase: Phase::Setup,
        };
        let published = match nf.setup() {
            Ok(p) => p,
            Err(e) => {
                nf.release();
                return Err(e);
            }
        };
        let result = xb::publish(client, vif_path, &published).and_then(|()| {
            nf.phase = Phase::Published;
            let wanted = [
                XenbusState::Connected,
                XenbusState::Closing,
                XenbusState::Closed,
            ];
            match wait_for_state(client, &be_state, &wanted, timeout_ns)? {
                XenbusState::Connected => Ok(()),
                other => Err(Error::BackendState(other)),
            }
        });
        if let Err(e) = result {
            if nf.phase == Phase::Published {
                // Best effort: the original error is what matters.
                let _ = nf.shutdown(client, timeout_ns);
            } else {
                nf.release();
            }
            return Err(e);
        }
        nf.link.up = true;
        // The backend maps the rx ring on connecting; kick it so it looks
        // at the buffers posted before it bound the port.
        nf.link.notify(&mut nf.counters);
        nf.poll();
        Ok(nf)
    }

    /// Allocates, grants and posts everything; the caller releases on
    /// error.
    fn setup(&mut self) -> Result<Published, Error> {
        let be = self.link.backend_id;
        let gnt = &mut self.link.gnt;
        let tx_ring_ref = self.tx.ring.setup(gnt, be)?;
        let rx_ring_ref = self.rx.ring.setup(gnt, be)?;
        for _ in 0..self.config.tx_buffers {
            let p = gnt.alloc_page()?;
            self.tx.pool.pages.push(Some(p));
            self.tx.pool.grants.push(None);
            self.tx.in_flight.push(None);
        }
        self.tx.free = (0..self.config.tx_buffers).collect();
        for _ in 0..self.config.rx_buffers {
            let p = gnt.alloc_page()?;
            self.rx.pool.pages.push(Some(p));
            self.rx.pool.grants.push(None);
        }
        self.rx.free = (0..self.config.rx_buffers).rev().collect();
        let port = self.link.evt.alloc_unbound(be)?;
        self.link.port = Some(port);
        // Post receive buffers now: the backend sees them when it maps
        // the ring.
        self.link.up = true;
        let posted = refill_rx(&mut self.rx, &mut self.link, &mut self.counters);
        self.link.up = false;
        posted?;
        Ok(Published {
            tx_ring_ref,
            rx_ring_ref,
            event_channel: port,
        })
    }

    /// Gives back every grant, page and the port; returns how many grants
    /// the backend still maps (kept for a later retry).
    fn release(&mut self) -> usize {
        let c = &mut self.counters;
        let gnt = &mut self.link.gnt;
        self.link.up = false;
        let mut busy = 0;
        busy += self.tx.pool.release(gnt, c);
        busy += self.rx.pool.release(gnt, c);
        busy += usize::from(!self.tx.ring.release(gnt, c));
        busy += usize::from(!self.rx.ring.release(gnt, c));
        self.tx.in_flight.iter_mut().for_each(|s| *s = None);
        self.tx.free.clear();
        self.tx.quarantine.clear();
        self.rx.free.clear();
        self.rx.posted.iter_mut().for_each(|s| *s = None);
        self.rx.quarantine.clear();
        self.rx.ready.clear();
        if let Some(port) = self.link.port.take() {
            // Closing fails only for a port that is not open: nothing
            // left to give back either way.
            let _ = self.link.evt.close(port);
        }
        busy
    }

    /// Disconnects: frontend `Closing`, wait (bounded) for the backend's
    /// `Closing`/`Closed`, frontend `Closed`, wait for the backend's
    /// `Closed`, then revoke every grant (rings and buffers), free the
    /// pages, close the port, remove the published keys and walk `state`
    /// back to `Initialising` so the vif can be connected again.
    ///
    /// Every step is attempted even if an earlier one failed; the first
    /// error is returned. Grants the backend still maps are kept, never
    /// freed: the result is then [`Error::GrantsBusy`] and calling
    /// `shutdown` again retries them.
    pub fn shutdown<R: XenstoreRing>(
        &mut self,
        client: &mut Client<R>,
        timeout_ns: u64,
    ) -> Result<(), Error> {
        self.teardown(client, timeout_ns, true)
    }

    /// Like [`Netfront::shutdown`], for a guest that is going away: the
    /// frontend stays Closed (no walk back to Initialising), so the backend
    /// stays Closed too and the toolstack sees a finished device.
    pub fn close<R: XenstoreRing>(&mut self, client: &mut Client<R>, timeout_ns: u64) -> Result<(), Error> {
        self.teardown(client, timeout_ns, false)
    }

    fn teardown<R: XenstoreRing>(
        &mut self,
        client: &mut Client<R>,
        timeout_ns: u64,
        reopen: bool,
    ) -> Result<(), Error> {
        self.link.up = false;
        let mut first: Option<Error> = None;
        let mut note = |r: Result<(), Error>| {
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        };
        if self.phase != Phase::Closed {
            let fe = self.nodes.frontend.clone();
            let fe_state = format!("{fe}/state");
            let be_state = format!("{}/state", self.nodes.backend);
            use XenbusState::*;
            note(switch_state(client, &fe_state, Closing).map_err(Error::from));
            note(
                wait_for_state(client, &be_state, &[Closing, Closed, Unknown], timeout_ns)
                    .map(drop)
                    .map_err(Error::from),
            );
            note(switch_state(client, &fe_state, Closed).map_err(Error::from));
            note(
                wait_for_state(client, &be_state, &[Closed, Unknown], timeout_ns)
                    .map(drop)
                    .map_err(Error::from),
            );
            let busy = self.release();
            note(xb::unpublish(client, &fe));
            if reopen {
                note(switch_state(client, &fe_state, Initialising).map_err(Error::from));
            }
            self.phase = Phase::Closed;
            if busy > 0 {
                return Err(Error::GrantsBusy(busy));
            }
        } else {
            let busy = self.release();
            if busy > 0 {
                return Err(Error::GrantsBusy(busy));
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The grant table and event-channel handles back, once
    /// [`shutdown`](Self::shutdown) released everything (for a
    /// reconnect). A device still holding grants is returned unchanged.
    pub fn into_handles(self) -> Result<(G, E), alloc::boxed::Box<Self>> {
        let holds = !self.tx.pool.pages.is_empty()
            || !self.rx.pool.pages.is_empty()
            || self.tx.ring.page.is_some()
            || self.rx.ring.page.is_some()
            || self.link.port.is_some();
        if holds {
            return Err(alloc::boxed::Box::new(self));
        }
        Ok((self.link.gnt, self.link.evt))
    }

    /// The event-channel port the backend signals; route its events to
    /// [`handle_event`](Self::handle_event).
    pub fn port(&self) -> Port {
        self.link.port.unwrap_or(0)
    }

    /// Our MAC address, from the `mac` node.
    pub fn mac(&self) -> [u8; 6] {
        self.nodes.mac
    }

    /// Our MAC address for smoltcp.
    pub fn ethernet_address(&self) -> smoltcp::wire::EthernetAddress {
        smoltcp::wire::EthernetAddress(self.nodes.mac)
    }

    /// The backend's domain.
    pub fn backend_id(&self) -> DomId {
        self.link.backend_id
    }

    /// The xenstore nodes we were configured from.
    pub fn nodes(&self) -> &VifNodes {
        &self.nodes
    }

    /// Connected, and the backend has not broken the ring protocol.
    pub fn is_up(&self) -> bool {
        self.link.up
    }

    /// Statistics so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Received frames waiting to be read.
    pub fn rx_queued(&self) -> usize {
        self.rx.ready.len()
    }

    /// Transmit requests the backend has not answered.
    pub fn tx_in_flight(&self) -> usize {
        self.tx.in_flight.iter().filter(|s| s.is_some()).count()
    }

    /// Buffers held back because the backend still maps their grant.
    pub fn quarantined(&self) -> usize {
        self.tx.quarantine.len() + self.rx.quarantine.len()
    }

    /// Whether a frame can be queued now without reclaiming.
    pub fn can_transmit(&self) -> bool {
        self.link.up && !self.tx.free.is_empty() && !self.tx.ring.front.is_full()
    }

    /// Call when [`port`](Self::port) fires: clears its pending flag and
    /// processes both rings. Returns whether the port was pending.
    pub fn handle_event(&mut self) -> bool {
        let pending = match self.link.port {
            Some(p) => self.link.evt.take_pending(p),
            None => false,
        };
        if pending {
            self.counters.notifications_received += 1;
        }
        self.poll();
        pending
    }

    /// Processes tx completions and rx responses, retries quarantined
    /// grants and refills the rx ring. Safe to call at any time.
    pub fn poll(&mut self) {
        reclaim_tx(&mut self.tx, &mut self.link, &mut self.counters);
        process_rx(&mut self.rx, &mut self.link, &mut self.counters);
        // Failing to grant just leaves fewer buffers posted until later.
        let _ = refill_rx(&mut self.rx, &mut self.link, &mut self.counters);
    }

    /// Queues `frame` (14..=1514 bytes) for transmission. This inherent
    /// method shadows [`smoltcp::phy::Device::transmit`] in method-call
    /// syntax; smoltcp itself calls the trait method.
    pub fn transmit(&mut self, frame: &[u8]) -> Result<(), TxError> {
        self.transmit_with(frame.len(), |buf| buf.copy_from_slice(frame))
    }

    /// Queues a frame of `len` bytes built by `fill`.
    pub fn transmit_with<T>(
        &mut self,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> T,
    ) -> Result<T, TxError> {
        let id = begin_send(&mut self.tx, &mut self.link, &mut self.counters, len)?;
        let out = fill(&mut self.tx.scratch);
        finish_send(&mut self.tx, &mut self.link, &mut self.counters, id)?;
        Ok(out)
    }

    /// Hands the next received frame to `f`. (Named apart from
    /// [`smoltcp::phy::Device::receive`].)
    pub fn receive_with<T>(&mut self, f: impl FnOnce(&[u8]) -> T) -> Option<T> {
        if self.rx.ready.is_empty() {
            self.poll();
        }
        if self.rx.ready.is_empty() {
            return None;
        }
        Some(f(self.rx.take_frame()))
    }

    /// The next received frame, copied out.
    pub fn poll_rx(&mut self) -> Option<Vec<u8>> {
        self.receive_with(<[u8]>::to_vec)
    }
}

impl<P: SharedPage> Tx<P> {
    fn retry_quarantine<G: GrantTable<Page = P>>(&mut self, gnt: &mut G, c: &mut Counters) {
        let mut i = 0;
        while i < self.quarantine.len() {
            let buf = self.quarantine[i];
            if self.pool.revoke(gnt, buf, c) {
                self.quarantine.swap_remove(i);
                self.free.push_back(buf);
            } else {
                i += 1;
            }
        }
    }

    fn complete<G: GrantTable<Page = P>>(
        &mut self,
        gnt: &mut G,
        c: &mut Counters,
        id: u16,
        status: i16,
    ) {
        let Some(slot) = self.in_flight.get_mut(usize::from(id)) else {
            c.bad_responses.tx_id_out_of_range += 1;
            return;
        };
        if slot.take().is_none() {
            c.bad_responses.tx_not_outstanding += 1;
            return;
        }
        if self.pool.revoke(gnt, id, c) {
            self.free.push_back(id);
        } else {
            self.quarantine.push(id);
        }
        match TxStatus::from_raw(status) {
            TxStatus::Okay => {}
            TxStatus::Error => c.tx_drops.backend_error += 1,
            TxStatus::Dropped => c.tx_drops.backend_dropped += 1,
            TxStatus::Invalid(_) => c.bad_responses.tx_bad_status += 1,
        }
    }
}

fn reclaim_tx<G: GrantTable, E: EventChannels>(
    tx: &mut Tx<G::Page>,
    link: &mut Link<G, E>,
    c: &mut Counters,
) {
    if !tx.quarantine.is_empty() {
        tx.retry_quarantine(&mut link.gnt, c);
    }
    if !link.up {
        return;
    }
    // Taken out while draining so buffers can be updated alongside.
    let Some(page) = tx.ring.page.take() else {
        return;
    };
    loop {
        let prod = match tx.ring.front.responses_until(&page) {
            Ok(p) => p,
            Err(ring::Overflow) => {
                c.bad_responses.ring_overflow += 1;
                link.up = false;
                break;
            }
        };
        while tx.ring.front.rsp_cons != prod {
            let mut e = [0u8; TX_ENTRY_SIZE];
            page.read_bytes(
                ring::entry_offset(tx.ring.front.rsp_cons, TX_RING_SIZE, TX_ENTRY_SIZE),
                &mut e,
            );
            tx.ring.front.rsp_cons = tx.ring.front.rsp_cons.wrapping_add(1);
            let r = TxResponse::new_unchecked(&e[..]);
            let (id, status) = (r.id(), r.status());
            tx.complete(&mut link.gnt, c, id, status);
        }
        if !tx.ring.front.final_check_for_responses(&page) {
            break;
        }
    }
    tx.ring.page = Some(page);
}

/// Picks a free buffer for a frame of `len` bytes.
fn begin_send<G: GrantTable, E: EventChannels>(
    tx: &mut Tx<G::Page>,
    link: &mut Link<G, E>,
    c: &mut Counters,
    len: usize,
) -> Result<u16, TxError> {
    if !link.up {
        return Err(TxError::Down);
    }
    if !(wire::MIN_FRAME..=wire::MAX_FRAME).contains(&len) {
        c.tx_drops.bad_length += 1;
        return Err(TxError::BadLength(len));
    }
    if tx.free.is_empty() || tx.ring.front.is_full() {
        reclaim_tx(tx, link, c);
        if !link.up {
            return Err(TxError::Down);
        }
    }
    if tx.ring.front.is_full() {
        return Err(TxError::Full);
    }
    let id = tx.free.pop_front().ok_or(TxError::Full)?;
    tx.scratch.clear();
    tx.scratch.resize(len, 0);
    Ok(id)
}

/// Copies the frame built in `tx.scratch` into buffer `id`, grants it
/// read-only and pushes the request.
fn finish_send<G: GrantTable, E: EventChannels>(
    tx: &mut Tx<G::Page>,
    link: &mut Link<G, E>,
    c: &mut Counters,
    id: u16,
) -> Result<(), TxError> {
    let (Some(ring_page), Some(page)) = (tx.ring.page.as_ref(), tx.pool.page(id)) else {
        tx.free.push_back(id);
        return Err(TxError::Down);
    };
    let len = tx.scratch.len();
    page.write_bytes(0, &tx.scratch);
    let gref = match link.gnt.grant(page, link.backend_id, true) {
        Ok(g) => g,
        Err(e) => {
            tx.free.push_back(id);
            return Err(TxError::Xen(e));
        }
    };
    tx.pool.grants[usize::from(id)] = Some(gref);
    tx.in_flight[usize::from(id)] = Some(len as u16);
    let mut e = [0u8; TX_ENTRY_SIZE];
    TxRequest::new_unchecked(&mut e[..]).fill(gref, 0, 0, id, len as u16);
    let prod = tx.ring.front.req_prod_pvt;
    ring_page.write_bytes(ring::entry_offset(prod, TX_RING_SIZE, TX_ENTRY_SIZE), &e);
    tx.ring.front.req_prod_pvt = prod.wrapping_add(1);
    c.tx_frames += 1;
    c.tx_bytes += len as u64;
    if tx.ring.front.push_requests(ring_page) {
        link.notify(c);
    }
    Ok(())
}

impl<P: SharedPage> Rx<P> {
    /// Copies the next ready frame out of its (no longer granted) page
    /// and frees the buffer; empty if none is ready.
    fn take_frame(&mut self) -> &[u8] {
        self.scratch.clear();
        if let Some(r) = self.ready.pop_front() {
            self.scratch.resize(r.len, 0);
            if let Some(page) = self.pool.page(r.buf) {
                page.read_bytes(r.offset, &mut self.scratch);
            }
            self.free.push(r.buf);
        }
        &self.scratch
    }

    fn retry_quarantine<G: GrantTable<Page = P>>(&mut self, gnt: &mut G, c: &mut Counters) {
        let mut i = 0;
        while i < self.quarantine.len() {
            let buf = self.quarantine[i];
            if self.pool.revoke(gnt, buf, c) {
                self.quarantine.swap_remove(i);
                self.free.push(buf);
            } else {
                i += 1;
            }
        }
    }

    /// Takes back the buffer posted in ring slot `slot`, revoking its
    /// grant. None if nothing is posted there or the backend still maps
    /// it (then it is quarantined).
    fn take_posted<G: GrantTable<Page = P>>(
        &mut self,
        gnt: &mut G,
        c: &mut Counters,
        slot: usize,
    ) -> Option<u16> {
        let buf = self.posted.get_mut(slot)?.take()?;
        if self.pool.revoke(gnt, buf, c) {
            Some(buf)
        } else {
            c.rx_drops.busy_grant += 1;
            self.quarantine.push(buf);
            None
        }
    }

    fn handle_response<G: GrantTable<Page = P>>(
        &mut self,
        gnt: &mut G,
        c: &mut Counters,
        pos: u32,
        e: &[u8],
    ) {
        let r = RxResponse::new_unchecked(e);
        let slot = (pos & (RX_RING_SIZE - 1)) as usize;
        // Whatever the response says, it used up the request of its slot.
        let buf = self.take_posted(gnt, c, slot);
        if self.extra_next {
            // An extra-info slot (no id).
            self.extra_next = r.extra_flags() & wire::XEN_NETIF_EXTRA_FLAG_MORE != 0;
            c.rx_drops.continuation += 1;
            self.free.extend(buf);
            return;
        }
        let (id, offset, flags, status) = (r.id(), r.offset(), r.flags(), r.status());
        if flags & wire::NETRXF_EXTRA_INFO != 0 {
            self.extra_next = true;
        }
        let continuation = self.discarding;
        self.discarding = flags & wire::NETRXF_MORE_DATA != 0;
        if usize::from(id) != slot {
            if usize::from(id) >= self.posted.len() {
                c.bad_responses.rx_id_out_of_range += 1;
            } else {
                c.bad_responses.rx_id_mismatch += 1;
            }
            self.free.extend(buf);
            return;
        }
        let Some(buf) = buf else {
            return;
        };
        if continuation {
            c.rx_drops.continuation += 1;
            self.free.push(buf);
            return;
        }
        match wire::check_rx(offset, flags, status) {
            Ok((offset, len)) => {
                c.rx_frames += 1;
                c.rx_bytes += len as u64;
                self.ready.push_back(Ready { buf, offset, len });
            }
            Err(why) => {
                let d = &mut c.rx_drops;
                match why {
                    RxReject::Status(_) => d.error_status += 1,
                    RxReject::OutsidePage => d.outside_page += 1,
                    RxReject::Oversize => d.oversize += 1,
                    RxReject::Runt => d.runt += 1,
                    RxReject::UnsupportedFlags(_) => d.unsupported_flags += 1,
                }
                self.free.push(buf);
            }
        }
    }
}

fn process_rx<G: GrantTable, E: EventChannels>(
    rx: &mut Rx<G::Page>,
    link: &mut Link<G, E>,
    c: &mut Counters,
) {
    if !rx.quarantine.is_empty() {
        rx.retry_quarantine(&mut link.gnt, c);
    }
    if !link.up {
        return;
    }
    let Some(page) = rx.ring.page.take() else {
        return;
    };
    loop {
        let prod = match rx.ring.front.responses_until(&page) {
            Ok(p) => p,
            Err(ring::Overflow) => {
                c.bad_responses.ring_overflow += 1;
                link.up = false;
                break;
            }
        };
        while rx.ring.front.rsp_cons != prod {
            let pos = rx.ring.front.rsp_cons;
            let mut e = [0u8; RX_ENTRY_SIZE];
            page.read_bytes(ring::entry_offset(pos, RX_RING_SIZE, RX_ENTRY_SIZE), &mut e);
            rx.ring.front.rsp_cons = pos.wrapping_add(1);
            rx.handle_response(&mut link.gnt, c, pos, &e);
        }
        if !rx.ring.front.final_check_for_responses(&page) {
            break;
        }
    }
    rx.ring.page = Some(page);
}

/// Posts every free rx buffer the ring has room for, granting each
/// read-write, and kicks the backend if it asked.
fn refill_rx<G: GrantTable, E: EventChannels>(
    rx: &mut Rx<G::Page>,
    link: &mut Link<G, E>,
    c: &mut Counters,
) -> Result<(), XenError> {
    if !link.up {
        return Ok(());
    }
    let Some(ring_page) = rx.ring.page.as_ref() else {
        return Ok(());
    };
    let mut pushed = false;
    let mut result = Ok(());
    while !rx.ring.front.is_full() {
        let prod = rx.ring.front.req_prod_pvt;
        let slot = (prod & (RX_RING_SIZE - 1)) as usize;
        // The slot's previous request was answered (the ring is not
        // full), so it holds no buffer.
        let (Some(&buf), false) = (rx.free.last(), rx.posted[slot].is_some()) else {
            break;
        };
        let Some(page) = rx.pool.page(buf) else {
            break;
        };
        let gref = match link.gnt.grant(page, link.backend_id, false) {
            Ok(g) => g,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        rx.free.pop();
        rx.pool.grants[usize::from(buf)] = Some(gref);
        rx.posted[slot] = Some(buf);
        let mut e = [0u8; RX_ENTRY_SIZE];
        RxRequest::new_unchecked(&mut e[..]).fill(slot as u16, gref);
        ring_page.write_bytes(ring::entry_offset(prod, RX_RING_SIZE, RX_ENTRY_SIZE), &e);
        rx.ring.front.req_prod_pvt = prod.wrapping_add(1);
        pushed = true;
    }
    if pushed && rx.ring.front.push_requests(ring_page) {
        link.notify(c);
    }
    result
}

/// smoltcp receive token: the next received frame.
pub struct NetRxToken<'a, P: SharedPage> {
    rx: &'a mut Rx<P>,
}

/// smoltcp transmit token: a free tx buffer (or, if none is left when it
/// is consumed, a counted drop).
pub struct NetTxToken<'a, G: GrantTable, E: EventChannels> {
    tx: &'a mut Tx<G::Page>,
    link: &'a mut Link<G, E>,
    counters: &'a mut Counters,
}

impl<P: SharedPage> smoltcp::phy::RxToken for NetRxToken<'_, P> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        // Tokens exist only while a frame is ready.
        f(self.rx.take_frame())
    }
}

impl<G: GrantTable, E: EventChannels> smoltcp::phy::TxToken for NetTxToken<'_, G, E> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        match begin_send(self.tx, self.link, self.counters, len) {
            Ok(id) => {
                let r = f(&mut self.tx.scratch);
                if finish_send(self.tx, self.link, self.counters, id).is_err() {
                    self.counters.tx_drops.no_buffer += 1;
                }
                r
            }
            Err(e) => {
                // No buffer after all (or a bad length, already counted):
                // let the stack build the frame, then drop it.
                if !matches!(e, TxError::BadLength(_)) {
                    self.counters.tx_drops.no_buffer += 1;
                }
                let mut junk = vec![0u8; len];
                f(&mut junk)
            }
        }
    }
}

impl<G: GrantTable, E: EventChannels> smoltcp::phy::Device for Netfront<G, E> {
    type RxToken<'a>
        = NetRxToken<'a, G::Page>
    where
        Self: 'a;
    type TxToken<'a>
        = NetTxToken<'a, G, E>
    where
        Self: 'a;

    fn receive(
        &mut self,
        _now: smoltcp::time::Instant,
    ) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        if self.rx.ready.is_empty() {
            self.poll();
        }
        if self.rx.ready.is_empty() {
            return None;
        }
        Some((
            NetRxToken { rx: &mut self.rx },
            NetTxToken {
                tx: &mut self.tx,
                link: &mut self.link,
                counters: &mut self.counters,
            },
        ))
    }

    fn transmit(&mut self, _now: smoltcp::time::Instant) -> Option<Self::TxToken<'_>> {
        if !self.can_transmit() {
            reclaim_tx(&mut self.tx, &mut self.link, &mut self.counters);
        }
        if !self.can_transmit() {
            return None;
        }
        Some(NetTxToken {
            tx: &mut self.tx,
            link: &mut self.link,
            counters: &mut self.counters,
        })
    }

    fn capabilities(&self) -> smoltcp::phy::DeviceCapabilities {
        let mut caps = smoltcp::phy::DeviceCapabilities::default();
        caps.medium = smoltcp::phy::Medium::Ethernet;
        caps.max_transmission_unit = wire::MAX_FRAME;
        caps.max_burst_size = Some(usize::from(self.config.rx_buffers));
        // No checksum offload was negotiated (feature-no-csum-offload=1):
        // the stack computes and verifies every checksum (the default).
        caps.checksum = smoltcp::phy::ChecksumCapabilities::default();
        caps
    }
}
