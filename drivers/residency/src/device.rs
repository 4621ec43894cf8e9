//! The residency device: the [`Switch`], and what drives its channels.
//!
//! With a group, the guest advertises itself in its own xenstore home
//! (`data/cohort/advert`) and watches the list dom0 keeps for it
//! (`/local/domain/0/cohort/peers/<domid>`, see the `discovery` crate).
//! Each time that watch fires the list is read again and handed to the
//! channel manager, which offers a channel to every listed peer and closes
//! the channels of peers no longer listed. Housekeeping (watch events,
//! handshakes, the peers' states) runs every [`HOUSEKEEPING_EVERY_NS`];
//! the data path's share of it runs every round. At shutdown the close
//! loop closes every channel, withdraws the advert, and waits (bounded)
//! until the peers let go of our pages.
//!
//! Nothing here waits or reads a clock: the caller passes the time in,
//! and lends the xenstore client for the calls that need it.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use channel::{Config, Manager, Note};
use discovery::{peers_path, Advert, Group, PeerList, ADVERT_KEY, PROTOCOL_VERSION};
use netdev::Detection;
use smoltcp::phy::{Device, DeviceCapabilities};
use smoltcp::time::Instant;
use xen_proto::iface::{DomId, EventChannels, RegionGrants, XenstoreRing};
use xen_proto::xenstore::Client;
use xenstore_wire::{WatchEvent, XsError};

use crate::counters::SwitchCounters;
use crate::switch::{FallbackDevice, Switch};

/// Token of the watch on our peer list.
pub const PEERS_TOKEN: &str = "cohort-peers";
/// Token of the manager's watches on peers' offers.
pub const OFFERS_TOKEN: &str = channel::manager::WATCH_TOKEN;
/// The xenstore side of the channels (watch events, handshakes, peers'
/// states) is looked at this often; the data path every round.
pub const HOUSEKEEPING_EVERY_NS: u64 = 2_000_000;
/// The close loop gives the peers this long to unmap our pages.
pub const CLOSE_TIMEOUT_NS: u64 = 2_000_000_000;
/// And looks again this often.
pub const CLOSE_RETRY_NS: u64 = 10_000_000;

/// What the residency device is made with.
#[derive(Clone, Debug)]
pub struct Options {
    /// Our domid.
    pub me: DomId,
    /// Our MAC (the fallback's): the one we advertise, and that channel
    /// frames must be addressed to.
    pub mac: [u8; 6],
    pub channel: Config,
    /// The group to advertise in; without one no channel is ever made and
    /// every frame takes the fallback.
    pub group: Option<Group>,
    /// Our IPv4 address, advertised if known.
    pub ipv4: Option<[u8; 4]>,
}

/// Something the platform logs (and times).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// dom0's list for us changed (the first one read included).
    Listed(PeerList),
    /// dom0's list does not parse: ignored.
    BadList { value: String, why: String },
    /// dom0's list could not be read.
    ListUnreadable { path: String, why: String },
    /// A channel's progress; for [`Note::Up`], `listed_at_ns`: when dom0
    /// first listed the peer (on the clock passed in), to time the setup.
    Channel { note: Note, listed_at_ns: Option<u64> },
}

/// Watch events, sorted for the residency device: whether our peer list's
/// watch fired, and the paths of the manager's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fired {
    pub peers: bool,
    pub offers: Vec<String>,
}

impl Fired {
    /// The events of our tokens among `events` (others are ignored).
    pub fn sort(events: impl IntoIterator<Item = WatchEvent>) -> Fired {
        let mut fired = Fired::default();
        for e in events {
            if e.token == PEERS_TOKEN {
                fired.peers = true;
            } else if e.token == OFFERS_TOKEN {
                fired.offers.push(e.path);
            }
        }
        fired
    }
}

/// Time for the close loop: what it is, and letting some pass (the kernel
/// sleeps; a test advances its clock and lets the peers run).
pub trait Clock {
    fn now_ns(&mut self) -> u64;
    fn pause(&mut self, ns: u64);
}

/// The switch and what drives its channels (see the module's docs).
pub struct Residency<D: FallbackDevice, G: RegionGrants + Clone, E: EventChannels + Clone> {
    switch: Switch<D, G, E>,
    me: DomId,
    group: Option<Group>,
    ipv4: Option<[u8; 4]>,
    /// Our peer list's path, while we advertise and watch it.
    peers_path: Option<String>,
    /// The list last read, to report changes only.
    last_list: Option<PeerList>,
    /// When dom0's list first named each peer (to time channel setup).
    listed_at: BTreeMap<DomId, u64>,
    /// When we advertised, and when dom0's list first named any peer.
    detection: Option<Detection>,
    next_housekeeping: u64,
    events: Vec<Event>,
}

impl<D: FallbackDevice, G: RegionGrants + Clone, E: EventChannels + Clone> Residency<D, G, E> {
    /// The device over `fallback`; nothing is advertised until
    /// [`Residency::advertise`].
    pub fn new(fallback: D, gnt: G, evt: E, options: Options) -> Self {
        let channels = options.group.is_some();
        let manager = Manager::new(gnt, evt, options.me, options.channel);
        Residency {
            switch: Switch::new(fallback, manager, options.mac, channels),
            me: options.me,
            group: options.group,
            ipv4: options.ipv4,
            peers_path: None,
            last_list: None,
            listed_at: BTreeMap::new(),
            detection: None,
            next_housekeeping: 0,
            events: Vec::new(),
        }
    }

    /// With a group: writes our advert and watches the list dom0 keeps for
    /// us; the advert written, or None without a group. `now_ns` times
    /// detection ([`Residency::detection`]).
    pub fn advertise<R: XenstoreRing>(&mut self, c: &mut Client<R>, now_ns: u64) -> Result<Option<Advert>, xen_proto::Error> {
        let Some(group) = self.group.clone() else { return Ok(None) };
        let advert = Advert { version: PROTOCOL_VERSION, group, mac: self.switch.mac(), ipv4: self.ipv4 };
        let path = peers_path(self.me);
        c.write(ADVERT_KEY, advert.to_value().as_bytes())?;
        c.watch(&path, PEERS_TOKEN)?;
        self.peers_path = Some(path);
        self.detection = Some(Detection { advertised_ns: now_ns, listed_ns: None });
        Ok(Some(advert))
    }

    /// When we advertised and when dom0 first listed a peer for us, on the
    /// clock passed in (None: never advertised).
    pub fn detection(&self) -> Option<Detection> {
        self.detection
    }

    /// Whether we advertise and watch our list.
    pub fn advertised(&self) -> bool {
        self.peers_path.is_some()
    }

    /// The data path's housekeeping, for every round (see
    /// [`Switch::data_service`]); true when [`Residency::housekeeping`] is
    /// due.
    pub fn data_service(&mut self, now_ns: u64) -> bool {
        self.switch.data_service(now_ns);
        now_ns >= self.next_housekeeping
    }

    /// The xenstore side: dom0's list read again if its watch fired,
    /// handed to the manager; the manager's watch events, handshakes and
    /// teardowns.
    pub fn housekeeping<R: XenstoreRing>(&mut self, c: &mut Client<R>, fired: &Fired, now_ns: u64) {
        self.next_housekeeping = now_ns + HOUSEKEEPING_EVERY_NS;
        if self.peers_path.is_some() && fired.peers {
            match self.read_list(c) {
                Some(Some(list)) => {
                    self.list_changed(&list, now_ns);
                    self.switch.manager().set_peers(c, &list, now_ns);
                }
                // None published (yet, or any more): no peers, and
                // channels are not settled.
                Some(None) => {
                    self.last_list = None;
                    self.switch.manager().set_peers(c, &PeerList::default(), now_ns);
                }
                None => {}
            }
        }
        self.switch.service(c, &fired.offers, now_ns);
        self.take_notes();
    }

    /// Every round's work for a device that has the xenstore client to
    /// itself: [`Residency::data_service`], and when due every watch event
    /// waiting on `c` (sorted by [`Fired::sort`]) and
    /// [`Residency::housekeeping`].
    pub fn service<R: XenstoreRing>(&mut self, c: &mut Client<R>, now_ns: u64) {
        if !self.data_service(now_ns) {
            return;
        }
        let mut events = Vec::new();
        while let Ok(Some(e)) = c.next_watch_event() {
            events.push(e);
        }
        self.housekeeping(c, &Fired::sort(events), now_ns);
    }

    /// dom0's list for us, as it is now: `Some(None)` while dom0 has
    /// published none (no daemon, or it has not seen our advert yet);
    /// `None` if it cannot be read.
    fn read_list<R: XenstoreRing>(&mut self, c: &mut Client<R>) -> Option<Option<PeerList>> {
        let path = self.peers_path.clone()?;
        match c.read(&path) {
            Ok(v) => match PeerList::parse(&v) {
                Ok(list) => Some(Some(list)),
                Err(e) => {
                    let value = String::from_utf8_lossy(&v).into_owned();
                    self.events.push(Event::BadList { value, why: format!("{e}") });
                    None
                }
            },
            Err(xen_proto::Error::Xs(XsError::Enoent | XsError::Eacces)) => Some(None),
            Err(e) => {
                self.events.push(Event::ListUnreadable { path, why: format!("{e}") });
                None
            }
        }
    }

    fn list_changed(&mut self, list: &PeerList, now_ns: u64) {
        if self.last_list.as_ref() == Some(list) {
            return;
        }
        self.listed_at.retain(|d, _| list.get(*d).is_some());
        for p in list.peers() {
            self.listed_at.entry(p.domid).or_insert(now_ns);
        }
        if let Some(d) = self.detection.as_mut().filter(|d| d.listed_ns.is_none() && !list.peers().is_empty()) {
            d.listed_ns = Some(now_ns);
        }
        self.last_list = Some(list.clone());
        self.events.push(Event::Listed(list.clone()));
    }

    /// The manager's notes, as events.
    fn take_notes(&mut self) {
        for note in self.switch.manager().take_notes() {
            let listed_at_ns = match note {
                Note::Up { peer, .. } => self.listed_at.get(&peer).copied(),
                _ => None,
            };
            self.events.push(Event::Channel { note, listed_at_ns });
        }
    }

    /// What happened since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        core::mem::take(&mut self.events)
    }

    /// Keeps every peer on the fallback (closing their channels), or lets
    /// them have channels again.
    pub fn hold(&mut self, held: bool, now_ns: u64) {
        self.switch.manager().hold(held, now_ns);
        self.take_notes();
    }

    /// Peers whose channel is up.
    pub fn channels_up(&self) -> usize {
        self.switch.manager_ref().up_count()
    }

    /// Whether channels are still being set up: dom0 has not answered our
    /// advert yet, or lists a peer whose channel is not up yet.
    pub fn settling(&self) -> bool {
        self.peers_path.is_some() && (self.last_list.is_none() || self.switch.manager_ref().pending_count() > 0)
    }

    /// One round of closing: every channel closed (peers see `Closed` and
    /// unmap our pages), the watch and the advert removed (the first
    /// time), revocations retried. True once no grant, mapping or port of
    /// a channel is left.
    pub fn close_step<R: XenstoreRing>(&mut self, c: &mut Client<R>, now_ns: u64) -> bool {
        self.switch.manager().close_all(c, now_ns);
        if let Some(path) = self.peers_path.take() {
            let _ = c.unwatch(&path, PEERS_TOKEN);
            let _ = c.rm(ADVERT_KEY);
        }
        self.take_notes();
        self.switch.manager_ref().is_idle()
    }

    /// The close loop: [`Residency::close_step`] every [`CLOSE_RETRY_NS`]
    /// until everything is released or [`CLOSE_TIMEOUT_NS`] passed. True
    /// if everything was released.
    pub fn close<R: XenstoreRing>(&mut self, c: &mut Client<R>, clock: &mut dyn Clock) -> bool {
        let deadline = clock.now_ns() + CLOSE_TIMEOUT_NS;
        loop {
            let now = clock.now_ns();
            if self.close_step(c, now) {
                return true;
            }
            if now > deadline {
                return false;
            }
            clock.pause(CLOSE_RETRY_NS);
        }
    }

    pub fn mac(&self) -> [u8; 6] {
        self.switch.mac()
    }

    pub fn switch(&mut self) -> &mut Switch<D, G, E> {
        &mut self.switch
    }

    pub fn switch_ref(&self) -> &Switch<D, G, E> {
        &self.switch
    }

    pub fn fallback(&mut self) -> &mut D {
        self.switch.fallback()
    }

    pub fn fallback_ref(&self) -> &D {
        self.switch.fallback_ref()
    }

    pub fn manager_ref(&self) -> &Manager<G, E> {
        self.switch.manager_ref()
    }

    pub fn counters(&self) -> SwitchCounters {
        self.switch.counters()
    }

    /// The paths' share of the counters, as one line.
    pub fn counters_line(&self) -> String {
        let s = self.switch.counters();
        let c = self.switch.manager_ref().counters();
        format!(
            "paths: tx channel {} frames ({} built in place), netfront {}; rx channel {}, netfront {}; \
             channel notifications sent {} received {}, ring full {}, drops {}, misaddressed {}, violations {}",
            s.tx_channel_frames,
            s.tx_in_place,
            s.tx_fallback_frames,
            s.rx_channel_frames,
            s.rx_fallback_frames,
            c.notifications_sent,
            c.notifications_received,
            c.ring_full,
            s.tx_drops,
            s.rx_misaddressed,
            s.channel_violations
        )
    }

    /// The channels' figures for BENCH lines: (name, value, unit).
    pub fn figures(&self) -> Vec<(&'static str, f64, &'static str)> {
        let c = self.switch.manager_ref().counters();
        let mut figures = Vec::new();
        if c.tx_frames > 0 {
            figures.push(("channel.notifications_sent_per_tx_frame", c.notifications_sent as f64 / c.tx_frames as f64, "ratio"));
        }
        figures
    }
}

impl<D: FallbackDevice, G: RegionGrants + Clone, E: EventChannels + Clone> Device for Residency<D, G, E> {
    type RxToken<'a>
        = <Switch<D, G, E> as Device>::RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = <Switch<D, G, E> as Device>::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.switch.receive(now)
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        self.switch.transmit(now)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.switch.capabilities()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn event(path: &str, token: &str) -> WatchEvent {
        WatchEvent { path: path.to_string(), token: token.to_string() }
    }

    #[test]
    fn watch_events_are_sorted_by_token() {
        let fired = Fired::sort([
            event("/local/domain/0/cohort/peers/3", PEERS_TOKEN),
            event("/local/domain/5/data/cohort/chan/3", OFFERS_TOKEN),
            event("control/shutdown", "cohort-control"),
            event("/local/domain/0/cohort/peers/3", PEERS_TOKEN),
        ]);
        assert_eq!(fired, Fired { peers: true, offers: alloc::vec!["/local/domain/5/data/cohort/chan/3".to_string()] });
        assert_eq!(Fired::sort([event("x", "other")]), Fired::default());
    }
}
