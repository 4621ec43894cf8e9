//! One channel between two co-resident guests: our control page and
//! transmit ring, granted read-only to the peer; the peer's, mapped
//! read-only; one interdomain event channel (allocated by the lower domid,
//! bound by the higher). See [`crate::layout`] for the control page.
//!
//! Life cycle, driven by [`crate::manager`]: [`Channel::offer`] allocates
//! and grants (state Offered) → [`Channel::attach`] maps the peer's offer
//! (state Connected) → [`Channel::poll_peer`] sees the peer Connected too
//! (up: frames flow) → [`Channel::close`] (state Closed), retried until
//! every grant is revoked. A channel whose peer broke the ring protocol is
//! broken: it reads nothing of the peer's any more, sends nothing, and
//! waits to be closed.

use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{fence, Ordering};

use xen_proto::iface::{
    DomId, EventChannels, GrantRef, OwnedRegion, Port, RegionGrants, SharedPage, SharedRegion, XenError, PAGE_SIZE,
};
use xen_proto::ring_index::notify_due;

use crate::counters::ChannelCounters;
use crate::layout::{self, State};
use crate::offer::Offer;
use crate::ring::{self, PlaceError, Record, Violation};

const EBUSY: i32 = -16;

/// Per-channel settings (from the kernel command line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Pages of our transmit ring, a power of two up to
    /// [`layout::MAX_RING_PAGES`].
    pub ring_pages: u32,
    /// Never ask the peer for events: the receiver polls its rings.
    pub polling: bool,
    /// Busy-poll window: after a frame on a channel, keep polling this long
    /// before asking for events and blocking (0: block at once). An answer
    /// that comes back within the window costs no event either way.
    pub spin_ns: u64,
    /// The largest frame we accept (and send, if the peer accepts it):
    /// `ring::ETH_FRAME` up to `ring::MAX_CHANNEL_FRAME`, and a ring must
    /// hold two.
    pub max_frame: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config { ring_pages: 16, polling: false, spin_ns: 0, max_frame: ring::ETH_FRAME }
    }
}

impl Config {
    pub fn valid(&self) -> bool {
        layout::valid_ring_pages(self.ring_pages)
            && (ring::ETH_FRAME..=ring::MAX_CHANNEL_FRAME).contains(&self.max_frame)
            && 2 * ring::record_len(self.max_frame) <= self.ring_pages as usize * PAGE_SIZE
    }
}

/// Why setting up or attaching failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelError {
    Xen(XenError),
    /// The peer speaks another layout version: refused.
    Version(u32),
    /// The peer's control page is not what its offer says.
    BadPeer(&'static str),
    /// The higher domid needs the lower one's event channel.
    NoPort,
    BadConfig,
}

impl From<XenError> for ChannelError {
    fn from(e: XenError) -> Self {
        ChannelError::Xen(e)
    }
}

impl core::fmt::Display for ChannelError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ChannelError::Xen(e) => write!(f, "Xen: {e:?}"),
            ChannelError::Version(v) => {
                write!(f, "peer speaks layout version {v}, we speak {}", layout::LAYOUT_VERSION)
            }
            ChannelError::BadPeer(why) => write!(f, "peer's control page: {why}"),
            ChannelError::NoPort => f.write_str("peer's offer names no event channel"),
            ChannelError::BadConfig => {
                f.write_str("ring pages must be a power of two up to 64, holding two frames of the largest size")
            }
        }
    }
}

/// Why a frame was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// Not up (yet, or any more).
    Down,
    /// No room now; the peer will be asked to notify us when there is.
    Full,
    BadLength,
    /// The peer's consumer index is impossible: close the channel.
    Violation,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Offered,
    Attached,
    Up,
    /// The peer broke the ring protocol: nothing more is read or sent.
    Broken,
    Closed,
}

struct PeerSide<G: RegionGrants> {
    control: G::Mapped,
    ring: Option<G::MappedRegion>,
    size: usize,
}

fn notify<E: EventChannels>(evt: &mut E, port: Option<Port>, counters: &mut ChannelCounters) {
    if let Some(port) = port {
        if evt.notify(port).is_ok() {
            counters.notifications_sent += 1;
        }
    }
}

pub struct Channel<G: RegionGrants, E: EventChannels> {
    gnt: G,
    evt: E,
    me: DomId,
    peer: DomId,
    config: Config,
    nonce: u32,
    stage: Stage,
    control: Option<G::Page>,
    control_ref: Option<GrantRef>,
    ring: Option<G::Region>,
    ring_refs: Vec<GrantRef>,
    port: Option<Port>,
    peer_side: Option<PeerSide<G>>,
    /// Nonce of the peer's offer we attached to.
    peer_nonce: Option<u32>,
    /// The largest frame we send: ours and the peer's limit, the smaller.
    send_limit: usize,
    size: usize,
    tx_prod: u32,
    /// The peer's consumer index as we last read and checked it: our free
    /// space is never less than it says, so it is read again only when
    /// a frame does not fit (each read moves a cache line the peer writes).
    peer_cons: u32,
    /// `tx_prod` when we last looked at the peer's data event.
    tx_checked: u32,
    rx_cons: u32,
    /// The peer's producer index as we last read and checked it: records
    /// up to it are published, so it is read again only once we have
    /// consumed them.
    peer_prod: u32,
    /// `rx_cons` when we last looked at the peer's space event.
    rx_checked: u32,
    /// What the peer did wrong, once it did (stage Broken).
    violation: Option<Violation>,
    counters: ChannelCounters,
}

impl<G: RegionGrants, E: EventChannels> Channel<G, E> {
    /// Allocates and grants (read-only, to `peer`) our control page and
    /// transmit ring; the lower domid also allocates the event channel.
    /// Returns the channel and the offer to publish. On failure nothing
    /// stays allocated.
    pub fn offer(gnt: G, evt: E, me: DomId, peer: DomId, config: Config, nonce: u32) -> Result<(Self, Offer), ChannelError> {
        if !config.valid() {
            return Err(ChannelError::BadConfig);
        }
        let mut ch = Channel {
            gnt,
            evt,
            me,
            peer,
            config,
            nonce,
            stage: Stage::Offered,
            control: None,
            control_ref: None,
            ring: None,
            ring_refs: Vec::new(),
            port: None,
            peer_side: None,
            peer_nonce: None,
            send_limit: ring::ETH_FRAME,
            size: config.ring_pages as usize * PAGE_SIZE,
            tx_prod: 0,
            peer_cons: 0,
            tx_checked: 0,
            rx_cons: 0,
            peer_prod: 0,
            rx_checked: 0,
            violation: None,
            counters: ChannelCounters::default(),
        };
        match ch.setup() {
            Ok(offer) => Ok((ch, offer)),
            Err(e) => {
                // Nothing was published: every grant can be revoked.
                ch.close();
                Err(e)
            }
        }
    }

    fn setup(&mut self) -> Result<Offer, ChannelError> {
        let ring = self.gnt.alloc_region(self.config.ring_pages as usize)?;
        let ring = self.ring.insert(ring);
        for i in 0..self.config.ring_pages as usize {
            let gref = self.gnt.grant_region_page(ring, i, self.peer, true)?;
            self.ring_refs.push(gref);
        }
        let control = self.gnt.alloc_page()?;
        layout::init(&control, self.config.ring_pages, self.nonce, &self.ring_refs);
        let control = self.control.insert(control);
        self.control_ref = Some(self.gnt.grant(control, self.peer, true)?);
        if self.me < self.peer {
            self.port = Some(self.evt.alloc_unbound(self.peer)?);
        }
        Ok(Offer {
            version: layout::LAYOUT_VERSION,
            nonce: self.nonce,
            control_ref: self.control_ref.unwrap_or(0),
            ring_pages: self.config.ring_pages,
            event_channel: self.port.filter(|_| self.me < self.peer),
            max_frame: self.config.max_frame,
        })
    }

    pub fn peer(&self) -> DomId {
        self.peer
    }

    pub fn nonce(&self) -> u32 {
        self.nonce
    }

    /// Nonce of the peer's offer we attached to.
    pub fn peer_nonce(&self) -> Option<u32> {
        self.peer_nonce
    }

    /// The largest frame this channel sends.
    pub fn send_limit(&self) -> usize {
        self.send_limit
    }

    pub fn port(&self) -> Option<Port> {
        self.port
    }

    pub fn counters(&self) -> ChannelCounters {
        self.counters
    }

    /// Frames may flow: both sides mapped each other.
    pub fn is_up(&self) -> bool {
        self.stage == Stage::Up
    }

    /// We mapped the peer (up or waiting for the peer to map us).
    pub fn is_attached(&self) -> bool {
        matches!(self.stage, Stage::Attached | Stage::Up)
    }

    pub fn is_closed(&self) -> bool {
        self.stage == Stage::Closed
    }

    /// What the peer did wrong, if it broke the ring protocol: the channel
    /// reads and sends nothing more, and is to be closed.
    pub fn violation(&self) -> Option<Violation> {
        self.violation
    }

    /// Grant refs of ours not revoked yet (ring pages and control page).
    pub fn grants_held(&self) -> usize {
        self.ring_refs.len() + usize::from(self.control_ref.is_some())
    }

    /// Pages of ours not freed yet.
    pub fn pages_held(&self) -> usize {
        self.ring.as_ref().map_or(0, |r| r.len() / PAGE_SIZE) + usize::from(self.control.is_some())
    }

    /// Stops reading and sending: the peer broke the protocol.
    fn broke(&mut self, v: Violation) -> Violation {
        if matches!(self.stage, Stage::Attached | Stage::Up) {
            self.stage = Stage::Broken;
        }
        self.violation = Some(v);
        v
    }

    fn set_state(&self, state: State) {
        if let Some(c) = &self.control {
            // Release: what we did before (mapping, reading) is done before
            // the peer can see the new state.
            fence(Ordering::Release);
            c.write_u32(layout::STATE_AT, state.raw());
        }
    }

    fn notify(&mut self) {
        notify(&mut self.evt, self.port, &mut self.counters);
    }

    /// Maps the peer's control page and ring from its `offer`, checks that
    /// they agree, binds the event channel (higher domid) and tells the
    /// peer we are connected. On failure the peer's pages are unmapped
    /// again; the caller closes the channel.
    pub fn attach(&mut self, offer: &Offer) -> Result<(), ChannelError> {
        if offer.version != layout::LAYOUT_VERSION {
            return Err(ChannelError::Version(offer.version));
        }
        if self.stage != Stage::Offered {
            return Err(ChannelError::BadPeer("attached twice"));
        }
        let control = self.gnt.map(self.peer, offer.control_ref, true)?;
        let header = layout::read_header(&control);
        let problem = if header.magic != layout::MAGIC {
            Some("bad magic")
        } else if header.version != layout::LAYOUT_VERSION {
            Some("version differs from its offer")
        } else if header.nonce != offer.nonce {
            Some("nonce differs from its offer")
        } else if header.ring_pages != offer.ring_pages || !layout::valid_ring_pages(header.ring_pages) {
            Some("ring size differs from its offer")
        } else {
            None
        };
        let size = header.ring_pages as usize * PAGE_SIZE;
        self.peer_side = Some(PeerSide { control, ring: None, size });
        if let Some(why) = problem {
            self.unmap_peer();
            return Err(ChannelError::BadPeer(why));
        }
        // The refs, copied once.
        let mut grefs = vec![0u32; header.ring_pages as usize];
        if let Some(side) = &self.peer_side {
            for (i, g) in grefs.iter_mut().enumerate() {
                *g = side.control.read_u32(layout::GREFS_AT + 4 * i);
            }
        }
        let mapped = match self.gnt.map_region(self.peer, &grefs, true) {
            Ok(r) => r,
            Err(e) => {
                self.unmap_peer();
                return Err(e.into());
            }
        };
        if let Some(side) = &mut self.peer_side {
            side.ring = Some(mapped);
        }
        if self.me > self.peer {
            let bound = match offer.event_channel {
                None => Err(ChannelError::NoPort),
                Some(remote) => self.evt.bind_interdomain(self.peer, remote).map_err(ChannelError::from),
            };
            match bound {
                Ok(port) => self.port = Some(port),
                Err(e) => {
                    self.unmap_peer();
                    return Err(e);
                }
            }
        }
        self.stage = Stage::Attached;
        self.peer_nonce = Some(offer.nonce);
        self.send_limit = self.config.max_frame.min(offer.max_frame);
        self.set_state(State::Connected);
        self.notify();
        self.poll_peer();
        Ok(())
    }

    /// Reads the peer's state (once). Moves an attached channel up when
    /// the peer is connected too. Returns what the peer says; `None` for a
    /// value no peer should write (treat it as a protocol violation).
    pub fn poll_peer(&mut self) -> Option<State> {
        if self.stage == Stage::Broken {
            return None;
        }
        let side = self.peer_side.as_ref()?;
        let raw = side.control.read_u32(layout::STATE_AT);
        let state = State::from_raw(raw);
        if self.stage == Stage::Attached && state == Some(State::Connected) {
            self.stage = Stage::Up;
        }
        state
    }

    /// Takes the event channel's pending event; true if there was one.
    pub fn take_event(&mut self) -> bool {
        let Some(port) = self.port else { return false };
        let pending = self.evt.take_pending(port);
        if pending {
            self.counters.notifications_received += 1;
        }
        pending
    }

    /// Whether a frame of `len` bytes fits now (reads the peer's consumer
    /// index).
    pub fn can_send(&self, len: usize) -> bool {
        let (Some(side), true) = (&self.peer_side, self.stage == Stage::Up) else {
            return false;
        };
        let cons = side.control.read_u32(layout::RX_CONS);
        ring::place(self.tx_prod, cons, self.size, len, self.send_limit).is_ok()
    }

    /// Builds a frame of `len` bytes in place in our ring. `f` fills it and
    /// returns a value and whether to send the frame (if not, the bytes
    /// are never published). `f` runs only once there is room; on error it
    /// is handed back unused. Notifies the peer if it asked.
    pub fn send_with<T, F: FnOnce(&mut [u8]) -> (T, bool)>(&mut self, len: usize, f: F) -> Result<(T, bool), (SendError, F)> {
        if self.stage != Stage::Up {
            return Err((SendError::Down, f));
        }
        let (Some(side), Some(ring), Some(control)) = (&self.peer_side, &self.ring, &self.control) else {
            return Err((SendError::Down, f));
        };
        // The consumer index we last read; if the frame does not fit, the
        // peer's, read once (and once more after asking for a space event).
        let mut cons = self.peer_cons;
        let mut placed = ring::place(self.tx_prod, cons, self.size, len, self.send_limit);
        if let Err(PlaceError::Full { .. }) = placed {
            cons = side.control.read_u32(layout::RX_CONS);
            placed = ring::place(self.tx_prod, cons, self.size, len, self.send_limit);
        }
        let placed = match placed {
            Err(PlaceError::Full { cons_needed }) => {
                // Ask for an event once the peer has consumed enough, then
                // look again: it may have done so meanwhile.
                control.write_u32(layout::TX_SPACE_EVENT, cons_needed);
                // SeqCst: our event index is visible before we re-read the
                // peer's consumer index (the peer does the mirror image).
                fence(Ordering::SeqCst);
                cons = side.control.read_u32(layout::RX_CONS);
                ring::place(self.tx_prod, cons, self.size, len, self.send_limit)
            }
            other => other,
        };
        let placement = match placed {
            Ok(p) => {
                self.peer_cons = cons;
                p
            }
            Err(PlaceError::Full { .. }) => {
                self.counters.ring_full += 1;
                return Err((SendError::Full, f));
            }
            Err(PlaceError::BadLength) => return Err((SendError::BadLength, f)),
            Err(PlaceError::BadConsumer) => {
                self.broke(Violation::Index { prod: self.tx_prod, cons });
                return Err((SendError::Violation, f));
            }
        };
        if let Some(pad_at) = placement.pad_at {
            ring.write_bytes(pad_at, &ring::header(self.size - pad_at - ring::HEADER, ring::KIND_PAD));
        }
        // Header and frame in one lend of the ring (one bounds check, one
        // call into the platform per frame).
        let header = ring::header(len, ring::KIND_FRAME);
        let (out, send) = ring.fill(placement.record_at, ring::HEADER + len, |record| {
            record.iter_mut().zip(header).for_each(|(b, h)| *b = h);
            f(record.get_mut(ring::HEADER..).unwrap_or_default())
        });
        if !send {
            return Ok((out, false));
        }
        // Release: the records are complete before the producer index
        // that makes them visible.
        fence(Ordering::Release);
        self.tx_prod = placement.new_prod;
        control.write_u32(layout::TX_PROD, self.tx_prod);
        self.counters.tx_frames += 1;
        self.counters.tx_bytes += len as u64;
        if self.config.polling {
            // We never notify: no need to order the index before a read
            // of the peer's event index (a full fence per frame).
            return Ok((out, true));
        }
        // SeqCst: the new index is visible before we read whether the peer
        // asked for an event (it arms, then re-reads our index).
        fence(Ordering::SeqCst);
        let event = side.control.read_u32(layout::RX_DATA_EVENT);
        let due = notify_due(self.tx_checked, self.tx_prod, event);
        self.tx_checked = self.tx_prod;
        if due {
            notify(&mut self.evt, self.port, &mut self.counters);
        }
        Ok((out, true))
    }

    /// Sends a copy of `frame`.
    pub fn send(&mut self, frame: &[u8]) -> Result<(), SendError> {
        self.send_with(frame.len(), |buf| {
            buf.copy_from_slice(frame);
            ((), true)
        })
        .map(drop)
        .map_err(|(e, _)| e)
    }

    /// Copies the next frame out of the peer's ring into `out` (the one
    /// copy on the receive side). `Ok(false)`: nothing there (now). `Err`:
    /// the peer broke the ring protocol; the channel is broken (every
    /// later call returns the same error without reading the peer's pages)
    /// and is to be closed.
    ///
    /// The peer's producer index is read once per call, and a call takes
    /// at most [`ring::MAX_RECORDS_PER_CALL`] records (a pad and the frame
    /// after it): whatever the peer publishes meanwhile waits for the next
    /// call.
    pub fn recv_into(&mut self, out: &mut Vec<u8>) -> Result<bool, Violation> {
        if let Some(v) = self.violation {
            return Err(v);
        }
        self.recv_checked(out).map_err(|v| self.broke(v))
    }

    fn recv_checked(&mut self, out: &mut Vec<u8>) -> Result<bool, Violation> {
        if !self.is_attached() {
            return Ok(false);
        }
        let (Some(side), Some(control)) = (&self.peer_side, &self.control) else {
            return Ok(false);
        };
        let Some(peer_ring) = &side.ring else { return Ok(false) };
        if self.peer_prod == self.rx_cons {
            self.peer_prod = side.control.read_u32(layout::TX_PROD);
            // Acquire: records are read only after the index that
            // published them.
            fence(Ordering::Acquire);
        }
        let mut avail = ring::available(self.peer_prod, self.rx_cons, side.size)?;
        for _ in 0..ring::MAX_RECORDS_PER_CALL {
            if avail == 0 {
                break;
            }
            let at = self.rx_cons as usize & (side.size - 1);
            let mut header = [0u8; ring::HEADER];
            peer_ring.read_bytes(at, &mut header);
            let (record, next) = ring::check(self.rx_cons, avail, side.size, header, self.config.max_frame)?;
            if let Record::Frame { at, len } = record {
                if out.len() != len {
                    out.resize(len, 0);
                }
                peer_ring.read_bytes(at, out);
            }
            // Release: our reads of the record are done before the peer
            // may reuse its space.
            fence(Ordering::Release);
            avail -= next.wrapping_sub(self.rx_cons) as usize;
            self.rx_cons = next;
            control.write_u32(layout::RX_CONS, self.rx_cons);
            // Polling, we never notify (nor need the fence before the read).
            if !self.config.polling {
                // SeqCst: the new consumer index is visible before we read
                // whether the peer waits for space.
                fence(Ordering::SeqCst);
                let event = side.control.read_u32(layout::TX_SPACE_EVENT);
                if notify_due(self.rx_checked, self.rx_cons, event) {
                    notify(&mut self.evt, self.port, &mut self.counters);
                }
                self.rx_checked = self.rx_cons;
            }
            if let Record::Frame { len, .. } = record {
                self.counters.rx_frames += 1;
                self.counters.rx_bytes += len as u64;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Before idling with frames to send: asks the peer for an event once
    /// it has consumed enough for a frame of `len` bytes, then looks again.
    /// True if there is room now (do not idle).
    pub fn arm_tx_space(&mut self, len: usize) -> bool {
        let (Some(side), Some(control), true) = (&self.peer_side, &self.control, self.stage == Stage::Up) else {
            return false;
        };
        let len = len.min(self.send_limit);
        match ring::place(self.tx_prod, side.control.read_u32(layout::RX_CONS), self.size, len, self.send_limit) {
            Err(PlaceError::Full { cons_needed }) => {
                control.write_u32(layout::TX_SPACE_EVENT, cons_needed);
                // SeqCst: the event index is visible before we re-read the
                // peer's consumer index.
                fence(Ordering::SeqCst);
                ring::place(self.tx_prod, side.control.read_u32(layout::RX_CONS), self.size, len, self.send_limit).is_ok()
            }
            _ => true,
        }
    }

    /// Before idling: asks the peer for an event on its next frame, then
    /// looks again. True if a frame arrived meanwhile (do not idle). In
    /// polling mode nothing is asked and the answer is always false.
    pub fn arm_rx(&mut self) -> bool {
        let (Some(side), Some(control), false) = (&self.peer_side, &self.control, self.config.polling) else {
            return false;
        };
        if !self.is_attached() {
            return false;
        }
        control.write_u32(layout::RX_DATA_EVENT, self.rx_cons.wrapping_add(1));
        // SeqCst: the event index is visible before we re-read the peer's
        // producer index (it publishes, then reads our event index).
        fence(Ordering::SeqCst);
        side.control.read_u32(layout::TX_PROD) != self.rx_cons
    }

    fn unmap_peer(&mut self) {
        let Some(mut side) = self.peer_side.take() else { return };
        if let Some(ring) = side.ring.take() {
            if let Err(e) = self.gnt.unmap_region(ring) {
                // Unmapping our own handles fails only if they are already
                // gone (the hypervisor released them): nothing to retry.
                self.counters.unmap_failures += 1;
                let _ = e;
            }
        }
        if self.gnt.unmap(side.control).is_err() {
            self.counters.unmap_failures += 1;
        }
    }

    /// Tears down, in order: say Closed (and notify), unmap the peer's
    /// pages, close the event channel, revoke our grants, free our pages.
    /// Grants the peer still maps are kept and retried on the next call;
    /// returns true once everything is given back.
    pub fn close(&mut self) -> bool {
        if self.stage != Stage::Closed {
            self.set_state(State::Closed);
            self.notify();
            self.stage = Stage::Closed;
        }
        self.unmap_peer();
        if let Some(port) = self.port.take() {
            // Fails only for a port already closed: nothing left to free.
            let _ = self.evt.close(port);
        }
        let gnt = &mut self.gnt;
        let mut busy = 0;
        self.ring_refs.retain(|&g| match gnt.revoke(g) {
            Err(XenError::Errno(EBUSY)) => {
                busy += 1;
                true
            }
            _ => false,
        });
        if let Some(g) = self.control_ref {
            if gnt.revoke(g) == Err(XenError::Errno(EBUSY)) {
                busy += 1;
            } else {
                self.control_ref = None;
            }
        }
        self.counters.revoke_busy += busy;
        if !self.ring_refs.is_empty() {
            return false;
        }
        if let Some(ring) = self.ring.take() {
            self.gnt.free_region(ring);
        }
        if self.control_ref.is_some() {
            return false;
        }
        if let Some(control) = self.control.take() {
            self.gnt.free_page(control);
        }
        true
    }
}
