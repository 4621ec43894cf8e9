//! One channel per co-resident peer that dom0 lists: offered when the peer
//! appears, attached when its offer arrives, closed when it leaves, breaks
//! the protocol or closes its side. Never waits for the peer: every step is
//! a xenstore request of ours or a look at shared memory, driven by
//! [`Manager::service`].
//!
//! Only peers in dom0's list (same group, co-resident) are offered a
//! channel or attached, and frames reach a channel only through the MAC
//! dom0 published for that peer.
//!
//! The peer is untrusted, and so is how long it keeps our pages mapped. A
//! closed channel whose grants the peer still maps drains: its pages stay
//! ours, its refs allocated, until the peer lets go. While a channel to a
//! peer drains, that peer is offered nothing; a peer still mapping our
//! pages [`DRAIN_DEADLINE_NS`] after we closed is shunned, and every
//! offer is bounded by caps on draining channels, grant refs and pages
//! (per peer and in all), so no peer can make us hand out more than
//! [`MAX_CHANNEL_GRANTS`] refs and [`MAX_CHANNEL_PAGES`] pages.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use discovery::{Peer, PeerList, MAX_PEERS};
use xen_proto::iface::{DomId, EventChannels, RegionGrants, XenstoreRing};
use xen_proto::xenstore::Client;
use xenstore_wire::{Access, Permission, XsError};

use crate::channel::{Channel, ChannelError, Config};
use crate::counters::ChannelCounters;
use crate::layout::{State, MAX_RING_PAGES};
use crate::offer::{offer_path, Offer};

/// Token of the watches on peers' offers.
pub const WATCH_TOKEN: &str = "cohort-chan";
/// After a channel to a still-listed peer closes, wait this long before
/// offering again: the peer needs the time to notice and clean up.
pub const REOFFER_AFTER_NS: u64 = 500_000_000;
/// Peers' offers are re-read this often even without a watch event.
const RECHECK_EVERY_NS: u64 = 1_000_000_000;

/// A peer has this long after we close a channel to unmap our pages (a
/// Cohort peer needs a few milliseconds: it sees `Closed` at its next
/// housekeeping round; a dead one's mappings go with it). Past it, the
/// peer is shunned and our revocations are retried less and less often.
pub const DRAIN_DEADLINE_NS: u64 = 2_000_000_000;
/// Once a drain is overdue, revocations are retried after this long, then
/// at doubling intervals up to [`REVOKE_RETRY_MAX_NS`] (a peer holding
/// 65 refs costs 65 failed revocations per retry).
pub const REVOKE_RETRY_FIRST_NS: u64 = 10_000_000;
pub const REVOKE_RETRY_MAX_NS: u64 = 1_000_000_000;
/// A peer that was shunned and that dom0 lists again (it left and rejoined
/// the group, or dom0's list flapped) is offered a channel only after
/// this long, doubled for each earlier shunning, up to
/// [`SHUN_BACKOFF_MAX_NS`]: leaving and rejoining buys a hostile peer no
/// fresh start.
pub const SHUN_BACKOFF_FIRST_NS: u64 = 1_000_000_000;
pub const SHUN_BACKOFF_MAX_NS: u64 = 256_000_000_000;
/// Peers whose shunnings are remembered after dom0 stops listing them
/// (beyond this, the one shunned least often is forgotten).
pub const MAX_REMEMBERED_PEERS: usize = 64;

/// Channels per peer that may drain at once. Structural: a peer with a
/// draining channel is offered no other.
pub const MAX_DRAINING_PER_PEER: usize = 1;
/// No offer to anyone while this many channels drain (each holds its
/// grants and pages until its peer lets go).
pub const MAX_DRAINING: usize = 8;
/// Grant refs (and pages) one channel holds at most: the largest ring
/// and the control page.
pub const MAX_GRANTS_PER_CHANNEL: usize = MAX_RING_PAGES as usize + 1;
/// Grant refs one peer's channels hold at most: one open, one draining.
pub const MAX_GRANTS_PER_PEER: usize = (1 + MAX_DRAINING_PER_PEER) * MAX_GRANTS_PER_CHANNEL;
/// Pages one peer's channels hold at most (one per grant).
pub const MAX_PAGES_PER_PEER: usize = MAX_GRANTS_PER_PEER;
/// Grant refs all channels together hold at most: one open channel per
/// peer dom0 may list and [`MAX_DRAINING`] draining ones, each of the
/// largest size (1040 refs; the kernel keeps netfront's refs apart, and
/// checks that both fit its grant table).
pub const MAX_CHANNEL_GRANTS: usize = (MAX_PEERS + MAX_DRAINING) * MAX_GRANTS_PER_CHANNEL;
/// Pages all channels together hold at most (1040: about 4 MiB).
pub const MAX_CHANNEL_PAGES: usize = MAX_CHANNEL_GRANTS;

/// Something the kernel logs (and times).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// dom0 lists `peer`: our side of a channel is offered.
    Offered { peer: DomId },
    /// Both sides mapped each other: frames to `mac` take the channel.
    Up { peer: DomId, mac: [u8; 6] },
    /// The channel closed (`was_up`: frames to `mac` now fall back).
    Down { peer: DomId, mac: [u8; 6], why: String, was_up: bool },
    /// The peer speaks another layout version: no channel.
    Refused { peer: DomId, why: String },
    /// A closed channel's last grant was revoked and its pages freed.
    Released { peer: DomId },
    /// A xenstore or hypervisor request failed.
    Failed { peer: DomId, why: String },
}

struct Slot<G: RegionGrants, E: EventChannels> {
    mac: [u8; 6],
    /// Where the peer offers us a channel (watched).
    peer_offer: String,
    chan: Option<Channel<G, E>>,
    /// Whether `Note::Up` was given for the current channel.
    reported_up: bool,
    /// When the last channel closed, to hold off offering again.
    closed_at: Option<u64>,
    /// No offer before this (a peer shunned before, listed again).
    hold_until: u64,
    /// Why the last offer was held back by a cap (noted once).
    deferred: Option<&'static str>,
    next_check: u64,
}

/// A closed channel whose grants the peer still maps.
struct Draining<G: RegionGrants, E: EventChannels> {
    chan: Channel<G, E>,
    closed_at: u64,
    /// Past [`DRAIN_DEADLINE_NS`]: the peer was shunned, retries back off.
    overdue: bool,
    next_try: u64,
    retry_ns: u64,
}

pub struct Manager<G: RegionGrants + Clone, E: EventChannels + Clone> {
    gnt: G,
    evt: E,
    me: DomId,
    config: Config,
    slots: BTreeMap<DomId, Slot<G, E>>,
    /// Closed channels whose grants the peer still maps.
    draining: Vec<Draining<G, E>>,
    /// Our offers to remove from xenstore (closed from the data path).
    stale_offers: BTreeSet<DomId>,
    /// Peers that broke the protocol or speak another version: no channel
    /// until dom0 stops listing them.
    shunned: BTreeSet<DomId>,
    /// Times each peer was shunned, kept after dom0 stops listing it (for
    /// the backoff when it is listed again).
    strikes: BTreeMap<DomId, u32>,
    /// Every peer held on the fallback path on request (benchmarks).
    held: bool,
    /// Counters of channels already closed, and the manager's own.
    closed_counters: ChannelCounters,
    /// The time of the last call that said.
    now_ns: u64,
    /// Peers whose channel we read from (attached or up), kept current
    /// by every call that can change it, for the data path.
    attached: Vec<DomId>,
    next_nonce: u32,
    notes: Vec<Note>,
}

impl<G: RegionGrants + Clone, E: EventChannels + Clone> Manager<G, E> {
    pub fn new(gnt: G, evt: E, me: DomId, config: Config) -> Self {
        Manager {
            gnt,
            evt,
            me,
            config,
            slots: BTreeMap::new(),
            draining: Vec::new(),
            stale_offers: BTreeSet::new(),
            shunned: BTreeSet::new(),
            strikes: BTreeMap::new(),
            held: false,
            closed_counters: ChannelCounters::default(),
            now_ns: 0,
            attached: Vec::new(),
            next_nonce: 1,
            notes: Vec::new(),
        }
    }

    pub fn me(&self) -> DomId {
        self.me
    }

    pub fn config(&self) -> Config {
        self.config
    }

    /// What happened since the last call.
    pub fn take_notes(&mut self) -> Vec<Note> {
        core::mem::take(&mut self.notes)
    }

    /// Peers dom0 lists now, with the MAC it gave.
    pub fn peers(&self) -> impl Iterator<Item = (DomId, [u8; 6])> + '_ {
        self.slots.iter().map(|(&d, s)| (d, s.mac))
    }

    /// The peer whose MAC is `mac`, if its channel is up.
    pub fn up_peer_for_mac(&self, mac: &[u8; 6]) -> Option<DomId> {
        self.slots.iter().find(|(_, s)| &s.mac == mac && s.chan.as_ref().is_some_and(Channel::is_up)).map(|(&d, _)| d)
    }

    /// The channel to `peer`, whatever its stage.
    pub fn channel(&mut self, peer: DomId) -> Option<&mut Channel<G, E>> {
        self.slots.get_mut(&peer).and_then(|s| s.chan.as_mut())
    }

    /// The MAC dom0 published for `peer`.
    pub fn mac_of(&self, peer: DomId) -> Option<[u8; 6]> {
        self.slots.get(&peer).map(|s| s.mac)
    }

    /// Peers whose channel we read from (attached or up).
    pub fn attached_peers(&self) -> &[DomId] {
        &self.attached
    }

    fn refresh_attached(&mut self) {
        self.attached.clear();
        for (&d, s) in &self.slots {
            if s.chan.as_ref().is_some_and(Channel::is_attached) {
                self.attached.push(d);
            }
        }
    }

    /// Whether any channel is up.
    pub fn any_up(&self) -> bool {
        self.slots.values().any(|s| s.chan.as_ref().is_some_and(Channel::is_up))
    }

    /// No channel exists or drains (no grant, mapping or port held).
    pub fn is_idle(&self) -> bool {
        self.slots.values().all(|s| s.chan.is_none()) && self.draining.is_empty()
    }

    /// Every channel's counters added up, closed ones included.
    pub fn counters(&self) -> ChannelCounters {
        let mut total = self.closed_counters;
        for c in self.slots.values().filter_map(|s| s.chan.as_ref()).chain(self.draining.iter().map(|d| &d.chan)) {
            total += c.counters();
        }
        total
    }

    /// Channels closed whose peer still maps our pages.
    pub fn draining_count(&self) -> usize {
        self.draining.len()
    }

    /// Grant refs all channels (open and draining) hold now.
    pub fn grants_held(&self) -> usize {
        self.channels().map(Channel::grants_held).sum()
    }

    /// Pages all channels (open and draining) hold now.
    pub fn pages_held(&self) -> usize {
        self.channels().map(Channel::pages_held).sum()
    }

    fn channels(&self) -> impl Iterator<Item = &Channel<G, E>> {
        self.slots.values().filter_map(|s| s.chan.as_ref()).chain(self.draining.iter().map(|d| &d.chan))
    }

    fn is_draining(&self, peer: DomId) -> bool {
        self.draining.iter().any(|d| d.chan.peer() == peer)
    }

    /// How long a peer shunned `strikes` times waits for an offer once
    /// dom0 lists it again.
    pub fn shun_backoff_ns(strikes: u32) -> u64 {
        match strikes {
            0 => 0,
            n => SHUN_BACKOFF_FIRST_NS.saturating_mul(1 << (n - 1).min(20)).min(SHUN_BACKOFF_MAX_NS),
        }
    }

    /// Times `peer` was shunned (remembered across its unlisting).
    pub fn strikes(&self, peer: DomId) -> u32 {
        self.strikes.get(&peer).copied().unwrap_or(0)
    }

    fn strike(&mut self, peer: DomId) {
        if !self.strikes.contains_key(&peer) && self.strikes.len() >= MAX_REMEMBERED_PEERS {
            let least = self.strikes.iter().min_by_key(|(_, n)| **n).map(|(d, _)| *d);
            if let Some(d) = least {
                self.strikes.remove(&d);
            }
        }
        let n = self.strikes.entry(peer).or_insert(0);
        *n = n.saturating_add(1);
    }

    /// dom0's list changed: channels to peers no longer listed close;
    /// newly listed peers are offered one.
    pub fn set_peers<R: XenstoreRing>(&mut self, c: &mut Client<R>, list: &PeerList, now_ns: u64) {
        self.now_ns = now_ns;
        let listed: BTreeMap<DomId, Peer> = list.peers().iter().filter(|p| p.domid != self.me).map(|p| (p.domid, *p)).collect();
        let gone: Vec<DomId> = self.slots.keys().filter(|d| !listed.contains_key(d)).copied().collect();
        for peer in gone {
            self.close(peer, "dom0 no longer lists the peer", now_ns);
            let _ = c.unwatch(&offer_path(peer, self.me), WATCH_TOKEN);
            self.slots.remove(&peer);
            // Listed again later (e.g. it rejoined the group): a new start.
            self.shunned.remove(&peer);
        }
        for (domid, p) in listed {
            match self.slots.get_mut(&domid) {
                Some(slot) if slot.mac != p.mac => {
                    slot.mac = p.mac;
                    self.close(domid, "dom0 lists the peer with another MAC", now_ns);
                }
                Some(_) => {}
                None => {
                    let backoff = Self::shun_backoff_ns(self.strikes(domid));
                    let slot = Slot {
                        mac: p.mac,
                        peer_offer: offer_path(domid, self.me),
                        chan: None,
                        reported_up: false,
                        closed_at: None,
                        hold_until: now_ns.saturating_add(backoff),
                        deferred: None,
                        next_check: now_ns,
                    };
                    self.slots.insert(domid, slot);
                    if let Err(e) = c.watch(&offer_path(domid, self.me), WATCH_TOKEN) {
                        self.notes.push(Note::Failed { peer: domid, why: format!("watch: {e}") });
                    }
                }
            }
        }
        self.remove_stale_offers(c);
        self.offer_where_needed(c, now_ns);
        self.refresh_attached();
    }

    /// Keeps every peer on the fallback path (closing their channels), or
    /// lets them have channels again (offered at the next service).
    pub fn hold(&mut self, held: bool, now_ns: u64) {
        self.held = held;
        if held {
            let peers: Vec<DomId> = self.slots.keys().copied().collect();
            for peer in peers {
                self.close(peer, "held on the fallback path", now_ns);
            }
        }
        for slot in self.slots.values_mut() {
            // Offer again as soon as released.
            slot.closed_at = None;
        }
        self.refresh_attached();
    }

    /// Listed peers whose channel is still being set up (not up, not
    /// refused or shunned, not held back).
    pub fn pending_count(&self) -> usize {
        if self.held {
            return 0;
        }
        self.slots
            .iter()
            .filter(|(d, s)| {
                !self.shunned.contains(d) && s.hold_until <= self.now_ns && !s.chan.as_ref().is_some_and(Channel::is_up)
            })
            .count()
    }

    /// Whether `peer` gets no channel until dom0 stops listing it.
    pub fn is_shunned(&self, peer: DomId) -> bool {
        self.shunned.contains(&peer)
    }

    /// Peers whose channel is up.
    pub fn up_count(&self) -> usize {
        self.slots.values().filter(|s| s.chan.as_ref().is_some_and(Channel::is_up)).count()
    }

    fn offer_where_needed<R: XenstoreRing>(&mut self, c: &mut Client<R>, now_ns: u64) {
        let wanting: Vec<DomId> = self
            .slots
            .iter()
            .filter(|(d, s)| {
                s.chan.is_none()
                    && !self.shunned.contains(d)
                    && !self.held
                    && !self.stale_offers.contains(d)
                    && !self.is_draining(**d)
                    && now_ns >= s.hold_until
                    && s.closed_at.is_none_or(|t| now_ns.saturating_sub(t) >= REOFFER_AFTER_NS)
            })
            .map(|(&d, _)| d)
            .collect();
        for peer in wanting {
            if let Some(cap) = self.cap_reached(peer) {
                let Some(slot) = self.slots.get_mut(&peer) else { continue };
                if slot.deferred != Some(cap) {
                    slot.deferred = Some(cap);
                    self.closed_counters.offers_deferred += 1;
                    self.notes.push(Note::Failed { peer, why: format!("no offer for now: {cap}") });
                }
                continue;
            }
            self.offer(c, peer, now_ns);
        }
    }

    /// Which cap a new channel to `peer` would break, if any.
    fn cap_reached(&self, peer: DomId) -> Option<&'static str> {
        let need = self.config.ring_pages as usize + 1;
        let of_peer = self.channels().filter(|c| c.peer() == peer);
        let (peer_grants, peer_pages) = of_peer.fold((0, 0), |(g, p), c| (g + c.grants_held(), p + c.pages_held()));
        if self.draining.len() >= MAX_DRAINING {
            Some("too many closed channels still mapped by their peers")
        } else if self.grants_held() + need > MAX_CHANNEL_GRANTS || peer_grants + need > MAX_GRANTS_PER_PEER {
            Some("channels hold as many grant refs as they may")
        } else if self.pages_held() + need > MAX_CHANNEL_PAGES || peer_pages + need > MAX_PAGES_PER_PEER {
            Some("channels hold as many pages as they may")
        } else {
            None
        }
    }

    fn offer<R: XenstoreRing>(&mut self, c: &mut Client<R>, peer: DomId, now_ns: u64) {
        let nonce = self.next_nonce;
        self.next_nonce = self.next_nonce.wrapping_add(1).max(1);
        let offered = Channel::offer(self.gnt.clone(), self.evt.clone(), self.me, peer, self.config, nonce);
        let (chan, offer) = match offered {
            Ok(x) => x,
            Err(e) => {
                self.notes.push(Note::Failed { peer, why: format!("offer: {e}") });
                if let Some(slot) = self.slots.get_mut(&peer) {
                    slot.closed_at = Some(now_ns);
                }
                return;
            }
        };
        let path = offer_path(self.me, peer);
        let perms = [Permission::new(self.me, Access::None), Permission::new(peer, Access::Read)];
        let value = offer.to_value();
        // One transaction: the peer never sees the node with the default
        // (unreadable) permissions, nor the permissions without the value.
        let written = c.transaction(|tx| {
            tx.write(&path, value.as_bytes())?;
            tx.set_perms(&path, &perms)
        });
        let Some(slot) = self.slots.get_mut(&peer) else { return };
        slot.chan = Some(chan);
        slot.deferred = None;
        slot.reported_up = false;
        slot.next_check = now_ns;
        match written {
            Ok(()) => self.notes.push(Note::Offered { peer }),
            Err(e) => {
                self.notes.push(Note::Failed { peer, why: format!("publishing the offer: {e}") });
                self.close(peer, "could not publish the offer", now_ns);
                self.remove_stale_offers(c);
            }
        }
    }

    /// Closes the channel to `peer`, if any, without xenstore: it stops
    /// carrying frames at once, drains until its grants are revoked, and
    /// our offer is removed at the next [`Manager::service`].
    fn close(&mut self, peer: DomId, why: &str, now_ns: u64) {
        let Some(slot) = self.slots.get_mut(&peer) else { return };
        let Some(mut chan) = slot.chan.take() else { return };
        slot.closed_at = Some(now_ns);
        self.notes.push(Note::Down { peer, mac: slot.mac, why: String::from(why), was_up: chan.is_up() });
        self.stale_offers.insert(peer);
        if chan.close() {
            self.closed_counters += chan.counters();
            self.notes.push(Note::Released { peer });
        } else {
            // At most one per peer: a peer with a draining channel is
            // offered no other (see offer_where_needed).
            self.draining.push(Draining { chan, closed_at: now_ns, overdue: false, next_try: now_ns, retry_ns: 0 });
        }
    }

    fn remove_stale_offers<R: XenstoreRing>(&mut self, c: &mut Client<R>) {
        let stale: Vec<DomId> = self.stale_offers.iter().copied().collect();
        for peer in stale {
            match c.rm(&offer_path(self.me, peer)) {
                Ok(()) | Err(xen_proto::Error::Xs(XsError::Enoent)) => {
                    self.stale_offers.remove(&peer);
                }
                Err(e) => self.notes.push(Note::Failed { peer, why: format!("removing our offer: {e}") }),
            }
        }
    }

    fn shun(&mut self, peer: DomId, why: &str, now_ns: u64) {
        if self.shunned.insert(peer) {
            self.strike(peer);
        }
        self.close(peer, why, now_ns);
    }

    /// The data path found the peer misbehaving (a broken ring, a ring it
    /// stopped consuming): close the channel now and shun the peer.
    pub fn fail(&mut self, peer: DomId, why: &str, now_ns: u64) {
        self.now_ns = now_ns;
        self.shun(peer, why, now_ns);
        self.refresh_attached();
    }

    /// Progress: attach to peers' offers (those whose watch fired, given in
    /// `fired` as paths, and all of them every second), move channels up,
    /// close the ones the peer closed or withdrew, retry revocations.
    pub fn service<R: XenstoreRing>(&mut self, c: &mut Client<R>, fired: &[String], now_ns: u64) {
        self.now_ns = now_ns;
        let peers: Vec<DomId> = self.slots.keys().copied().collect();
        for peer in peers {
            let Some(slot) = self.slots.get_mut(&peer) else { continue };
            let due = now_ns >= slot.next_check || fired.contains(&slot.peer_offer);
            if let Some(chan) = slot.chan.as_mut() {
                // Broken by the data path, and not failed by it (yet).
                if let Some(v) = chan.violation() {
                    self.shun(peer, &format!("the peer broke the ring protocol: {v:?}"), now_ns);
                    continue;
                }
                // The peer's own word, from its control page.
                match chan.poll_peer() {
                    Some(State::Closed) => {
                        self.close(peer, "the peer closed the channel", now_ns);
                        continue;
                    }
                    None if chan.is_attached() => {
                        self.shun(peer, "the peer wrote an unknown state", now_ns);
                        continue;
                    }
                    _ => {}
                }
            }
            if due {
                if let Some(slot) = self.slots.get_mut(&peer) {
                    slot.next_check = now_ns + RECHECK_EVERY_NS;
                }
                self.check_offer(c, peer, now_ns);
            }
            self.report_up(peer);
        }
        self.drain(now_ns, false);
        self.remove_stale_offers(c);
        self.offer_where_needed(c, now_ns);
        self.refresh_attached();
    }

    fn report_up(&mut self, peer: DomId) {
        let Some(slot) = self.slots.get_mut(&peer) else { return };
        if slot.chan.as_ref().is_some_and(Channel::is_up) && !slot.reported_up {
            slot.reported_up = true;
            self.notes.push(Note::Up { peer, mac: slot.mac });
        }
    }

    /// Reads the peer's offer and acts on it.
    fn check_offer<R: XenstoreRing>(&mut self, c: &mut Client<R>, peer: DomId, now_ns: u64) {
        let Some(chan) = self.slots.get(&peer).and_then(|s| s.chan.as_ref()) else { return };
        let attached = chan.is_attached();
        let nonce_seen = chan.peer_nonce();
        let value = match c.read(&offer_path(peer, self.me)) {
            Ok(v) => v,
            // Absent, or not (yet) readable by us: nothing to attach to; an
            // offer we were attached to is withdrawn (the peer closed or died).
            Err(xen_proto::Error::Xs(XsError::Enoent | XsError::Eacces)) => {
                if attached {
                    self.close(peer, "the peer withdrew its offer", now_ns);
                }
                return;
            }
            Err(e) => {
                self.notes.push(Note::Failed { peer, why: format!("reading the peer's offer: {e}") });
                return;
            }
        };
        let offer = match Offer::parse(&value) {
            Ok(o) => o,
            Err(e) => {
                self.shun(peer, &format!("bad offer: {e}"), now_ns);
                return;
            }
        };
        if attached {
            if nonce_seen != Some(offer.nonce) {
                self.close(peer, "the peer made a new offer", now_ns);
            }
            return;
        }
        let Some(chan) = self.slots.get_mut(&peer).and_then(|s| s.chan.as_mut()) else { return };
        match chan.attach(&offer) {
            Ok(()) => {}
            Err(ChannelError::Version(v)) => {
                let why = format!("{}", ChannelError::Version(v));
                self.notes.push(Note::Refused { peer, why: why.clone() });
                self.shun(peer, &why, now_ns);
            }
            Err(e @ (ChannelError::BadPeer(_) | ChannelError::NoPort | ChannelError::BadConfig)) => {
                self.shun(peer, &format!("{e}"), now_ns);
            }
            Err(e @ ChannelError::Xen(_)) => {
                // E.g. the peer died between publishing and our mapping:
                // close, and offer again later if it is still listed.
                self.notes.push(Note::Failed { peer, why: format!("attach: {e}") });
                self.close(peer, "attach failed", now_ns);
            }
        }
    }

    /// Retries revoking the grants of closed channels (on every call
    /// until the drain is overdue, then backing off; `force`: now). A peer
    /// still mapping our pages past [`DRAIN_DEADLINE_NS`] is shunned.
    fn drain(&mut self, now_ns: u64, force: bool) {
        let mut overdue = Vec::new();
        let mut i = 0;
        while i < self.draining.len() {
            let d = &mut self.draining[i];
            if force || now_ns >= d.next_try {
                if d.chan.close() {
                    let d = self.draining.swap_remove(i);
                    self.closed_counters += d.chan.counters();
                    self.notes.push(Note::Released { peer: d.chan.peer() });
                    continue;
                }
                if d.overdue {
                    d.retry_ns = (d.retry_ns * 2).clamp(REVOKE_RETRY_FIRST_NS, REVOKE_RETRY_MAX_NS);
                    d.next_try = now_ns.saturating_add(d.retry_ns);
                }
            }
            if !d.overdue && now_ns.saturating_sub(d.closed_at) >= DRAIN_DEADLINE_NS {
                d.overdue = true;
                d.retry_ns = REVOKE_RETRY_FIRST_NS;
                d.next_try = now_ns.saturating_add(d.retry_ns);
                overdue.push(d.chan.peer());
            }
            i += 1;
        }
        for peer in overdue {
            self.closed_counters.drain_overdue += 1;
            let listed = self.slots.contains_key(&peer);
            if !listed || self.shunned.insert(peer) {
                self.strike(peer);
            }
            let until = if listed { "until dom0 stops listing it" } else { "when listed again" };
            self.notes.push(Note::Failed {
                peer,
                why: format!(
                    "still maps our pages {} ms after we closed the channel: shunned {until}",
                    DRAIN_DEADLINE_NS / 1_000_000
                ),
            });
        }
    }

    /// Closes every channel (guest shutdown). Call again (or
    /// [`Manager::service`]) until [`Manager::is_idle`] to finish the
    /// revocations the peers still hold up.
    pub fn close_all<R: XenstoreRing>(&mut self, c: &mut Client<R>, now_ns: u64) {
        let peers: Vec<DomId> = self.slots.keys().copied().collect();
        for peer in peers {
            self.close(peer, "shutting down", now_ns);
            let _ = c.unwatch(&offer_path(peer, self.me), WATCH_TOKEN);
        }
        self.slots.clear();
        self.remove_stale_offers(c);
        self.drain(now_ns, true);
        self.refresh_attached();
    }
}
