//! Cohort's network device on Xen: netfront plus a shared-memory channel
//! to every co-resident peer that dom0 lists in our group, behind one
//! smoltcp device (`channel::Switch`). Without `net.group` nothing is
//! advertised, dom0 lists nothing, and every frame takes netfront.

use super::events::XenEvents;
use super::grants::{self, XenGrants};
use super::net::{self as xnet, XenNet};
use super::{watches, with_xenstore, Xenstore};
use crate::clock::{now_ns, SECOND};
use netdev::{NetDevice, PathFrames, Paths};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use channel::manager::WATCH_TOKEN;
use channel::switch::Switch;
use channel::{Config, Manager, Note};
use cohort_boot::cmdline::ChannelOptions;
use discovery::{peers_path, Advert, Group, PeerList, ADVERT_KEY, PROTOCOL_VERSION};
use smoltcp::phy::{Device, DeviceCapabilities};
use smoltcp::time::Instant;
use xen_proto::iface::DomId;
use xen_proto::values::Mac;
use xenstore_wire::XsError;

pub type XenSwitch = Switch<XenNet, XenGrants, XenEvents>;

/// Token of the watch on our peer list.
const PEERS_TOKEN: &str = "cohort-peers";
/// The xenstore side of the channels (watch events, handshakes, peers'
/// states) is looked at this often; the data path runs every round.
const HOUSEKEEPING_EVERY_NS: u64 = 2_000_000;

pub struct ResidentNet {
    switch: XenSwitch,
    /// Our peer list's path, when discovery is on.
    peers_path: Option<String>,
    /// The list last read, to log changes only.
    last_list: Option<PeerList>,
    /// When dom0's list first named each peer (to time channel setup).
    listed_at: BTreeMap<DomId, u64>,
    next_housekeeping: u64,
}

fn store_err(e: xen_proto::Error) -> String {
    e.to_string()
}

fn notification(chan: &ChannelOptions<'_>) -> String {
    match (chan.poll, chan.spin_us) {
        (true, _) => "polled".into(),
        (false, 0) => "event-driven".into(),
        (false, us) => format!("event-driven after {us} us of polling"),
    }
}

impl ResidentNet {
    /// Wraps netfront; with a group, advertises us (MAC, and `ipv4` if
    /// known) and watches the list dom0 keeps for us.
    pub fn open(net: XenNet, chan: &ChannelOptions<'_>, ipv4: Option<[u8; 4]>) -> Result<ResidentNet, String> {
        let me = super::peer::own_domid()?;
        let mac = net.mac();
        // Without a group there is never a channel: keep netfront's frames.
        let max_frame = if chan.group.is_some() { chan.mtu as usize + 14 } else { channel::ring::ETH_FRAME };
        let config = Config { ring_pages: chan.pages, polling: chan.poll, spin_ns: u64::from(chan.spin_us) * 1000, max_frame };
        if !config.valid() {
            return Err(format!(
                "chan.mtu={} needs channel rings that hold two such frames: chan.pages={} is {} KiB (raise chan.pages or lower chan.mtu)",
                chan.mtu,
                chan.pages,
                chan.pages * 4
            ));
        }
        let manager = Manager::new(XenGrants, XenEvents, me, config);
        let mut dev = ResidentNet {
            switch: Switch::new(net, manager, mac, chan.group.is_some()),
            peers_path: None,
            last_list: None,
            listed_at: BTreeMap::new(),
            next_housekeeping: 0,
        };
        let Some(group) = chan.group else {
            log::info!("residency: no net.group: every frame takes netfront");
            return Ok(dev);
        };
        let group = Group::new(group).map_err(|e| format!("net.group: {e}"))?;
        let advert = Advert { version: PROTOCOL_VERSION, group, mac, ipv4 };
        let path = peers_path(me);
        with_xenstore(|c| -> Result<(), String> {
            c.write(ADVERT_KEY, advert.to_value().as_bytes()).map_err(store_err)?;
            c.watch(&path, PEERS_TOKEN).map_err(store_err)
        })
        .ok_or("no xenstore client")??;
        log::info!(
            "residency: advertised `{}` in group `{}`; channels: {} pages per ring, MTU {}, {}",
            advert.to_value(),
            advert.group,
            chan.pages,
            chan.mtu,
            notification(chan)
        );
        dev.peers_path = Some(path);
        Ok(dev)
    }

    /// dom0's list for us, as it is now: `Some(None)` while dom0 has
    /// published none (no daemon, or it has not seen our advert yet);
    /// `None` if it cannot be read.
    fn read_list(&self, c: &mut Xenstore) -> Option<Option<PeerList>> {
        let path = self.peers_path.as_ref()?;
        match c.read(path) {
            Ok(v) => match PeerList::parse(&v) {
                Ok(list) => Some(Some(list)),
                Err(e) => {
                    log::warn!("residency: dom0's peer list `{}`: {e}; ignored", String::from_utf8_lossy(&v));
                    None
                }
            },
            Err(xen_proto::Error::Xs(XsError::Enoent | XsError::Eacces)) => Some(None),
            Err(e) => {
                log::warn!("residency: reading {path}: {e}");
                None
            }
        }
    }

    fn service_residency(&mut self) {
        let now = now_ns();
        self.switch.data_service(now);
        if now < self.next_housekeeping {
            return;
        }
        self.next_housekeeping = now + HOUSEKEEPING_EVERY_NS;
        let notes = with_xenstore(|c| {
            if self.peers_path.is_some() && !watches::take(c, PEERS_TOKEN).is_empty() {
                match self.read_list(c) {
                    Some(Some(list)) => {
                        self.list_changed(&list, now);
                        self.switch.manager().set_peers(c, &list, now);
                    }
                    // None published (yet, or any more): no peers, and
                    // channels are not settled.
                    Some(None) => {
                        self.last_list = None;
                        self.switch.manager().set_peers(c, &PeerList::default(), now);
                    }
                    None => {}
                }
            }
            let fired = watches::take(c, WATCH_TOKEN);
            self.switch.service(c, &fired, now);
            self.switch.manager().take_notes()
        })
        .unwrap_or_default();
        for note in notes {
            self.log_note(note);
        }
    }

    fn list_changed(&mut self, list: &PeerList, now: u64) {
        if self.last_list.as_ref() == Some(list) {
            return;
        }
        let names: Vec<String> = list.peers().iter().map(|p| format!("dom{} ({})", p.domid, Mac(p.mac))).collect();
        log::info!("residency: dom0 lists co-resident peers: [{}]", names.join(", "));
        self.listed_at.retain(|d, _| list.get(*d).is_some());
        for p in list.peers() {
            self.listed_at.entry(p.domid).or_insert(now);
        }
        self.last_list = Some(list.clone());
    }

    fn log_note(&mut self, note: Note) {
        let xen_time = super::time::system_time_ns();
        match note {
            Note::Offered { peer } => log::debug!("channel to dom{peer}: offered"),
            Note::Up { peer, mac } => {
                let since = self.listed_at.get(&peer).map_or(0, |t| now_ns().saturating_sub(*t));
                log::info!(
                    "channel to dom{peer} ({}): up, {}.{:03} ms after dom0 listed it (Xen time {xen_time} ns)",
                    Mac(mac),
                    since / 1_000_000,
                    since / 1000 % 1000
                );
            }
            Note::Down { peer, mac, why, was_up: true } => {
                log::warn!(
                    "channel to dom{peer}: closed ({why}); frames to {} fall back to netfront (Xen time {xen_time} ns)",
                    Mac(mac)
                );
            }
            Note::Down { peer, why, was_up: false, .. } => log::info!("channel to dom{peer}: not set up ({why})"),
            Note::Refused { peer, why } => log::warn!("channel to dom{peer}: refused: {why}"),
            Note::Released { peer } => log::info!("channel to dom{peer}: released (every grant revoked, pages freed)"),
            Note::Failed { peer, why } => log::warn!("channel to dom{peer}: {why}"),
        }
    }
}

impl Device for ResidentNet {
    type RxToken<'a>
        = <XenSwitch as Device>::RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = <XenSwitch as Device>::TxToken<'a>
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

impl Paths for ResidentNet {
    fn channels_up(&self) -> usize {
        self.switch.manager_ref().up_count()
    }

    fn settling(&self) -> bool {
        self.peers_path.is_some() && (self.last_list.is_none() || self.switch.manager_ref().pending_count() > 0)
    }

    fn hold(&mut self, held: bool) {
        let now = now_ns();
        self.switch.manager().hold(held, now);
        for note in self.switch.manager().take_notes() {
            self.log_note(note);
        }
    }

    fn frames(&self) -> PathFrames {
        let s = self.switch.counters();
        PathFrames {
            tx_channel: s.tx_channel_frames,
            tx_fallback: s.tx_fallback_frames,
            rx_channel: s.rx_channel_frames,
            rx_fallback: s.rx_fallback_frames,
        }
    }
}

impl NetDevice for ResidentNet {
    fn mac(&self) -> [u8; 6] {
        self.switch.mac()
    }

    fn kind(&self) -> &'static str {
        "netfront"
    }

    fn service(&mut self) {
        self.switch.fallback().handle_event();
        self.service_residency();
    }

    fn prepare_idle(&mut self) -> bool {
        self.switch.arm()
    }

    fn wants_polling(&self) -> bool {
        self.switch.wants_polling()
    }

    fn tx_blocked(&self) -> bool {
        self.switch.tx_blocked()
    }

    fn counters(&self) -> String {
        let s = self.switch.counters();
        let c = self.switch.manager_ref().counters();
        format!(
            "{}; paths: tx channel {} frames ({} built in place), netfront {}; rx channel {}, netfront {}; \
             channel notifications sent {} received {}, ring full {}, drops {}, misaddressed {}, violations {}",
            xnet::counters_line(self.switch.fallback_ref()),
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

    fn figures(&self) -> Vec<(&'static str, f64, &'static str)> {
        let mut figures = xnet::figures(self.switch.fallback_ref());
        let c = self.switch.manager_ref().counters();
        if c.tx_frames > 0 {
            figures.push(("channel.notifications_sent_per_tx_frame", c.notifications_sent as f64 / c.tx_frames as f64, "ratio"));
        }
        figures
    }

    fn paths(&mut self) -> Option<&mut dyn Paths> {
        Some(self)
    }

    fn shutdown(&mut self) -> Result<String, String> {
        // Channels first (peers see Closed and unmap our pages), bounded.
        let deadline = now_ns() + 2 * SECOND;
        loop {
            let now = now_ns();
            with_xenstore(|c| self.switch.manager().close_all(c, now));
            if let Some(path) = &self.peers_path {
                let path = path.clone();
                with_xenstore(|c| {
                    let _ = c.unwatch(&path, PEERS_TOKEN);
                    let _ = c.rm(ADVERT_KEY);
                });
                self.peers_path = None;
            }
            for note in self.switch.manager().take_notes() {
                self.log_note(note);
            }
            if self.switch.manager_ref().is_idle() || now > deadline {
                break;
            }
            crate::clock::sleep(SECOND / 100);
        }
        let channels_idle = self.switch.manager_ref().is_idle();
        let closed = xnet::close(self.switch.fallback());
        let (refs, mapped, pages) = grants::in_use();
        let how = format!(
            "{}; channels {}; grant refs in use {refs}, mapped {mapped}, pages {pages}",
            closed.as_deref().unwrap_or_else(|e| e.as_str()),
            if channels_idle { "closed" } else { "NOT all released" }
        );
        if closed.is_ok() && channels_idle && refs == 0 && mapped == 0 && pages == 0 {
            Ok(how)
        } else {
            Err(how)
        }
    }
}
