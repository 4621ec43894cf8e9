//! Cohort's network device on Xen: the `residency` crate's device
//! (netfront plus a shared-memory channel to every co-resident peer that
//! dom0 lists in our group) on this kernel's Xen glue: its grants, event
//! channels, xenstore client (whose watch events `watches` sorts by token)
//! and clock, and the log and `EVENT` lines of what it sees. Without
//! `net.group` nothing is advertised, dom0 lists nothing, and every frame
//! takes netfront.

use super::events::XenEvents;
use super::grants::{self, XenGrants};
use super::net::{self as xnet, XenNet};
use super::{watches, with_xenstore};
use crate::clock::now_ns;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use channel::{Config, Note};
use cohort_boot::cmdline::ChannelOptions;
use discovery::Group;
use figures::Event as ResultLine;
use netdev::{Detection, NetDevice, PathFrames, Paths, TcpSent};
use netfront::{TxWatchdog, TX_STALL_NS};
use residency::{Event, Fired, Options, Residency, OFFERS_TOKEN, PEERS_TOKEN};
use smoltcp::phy::{Device, DeviceCapabilities};
use smoltcp::time::Instant;
use xen_proto::values::Mac;

pub type XenResidency = Residency<XenNet, XenGrants, XenEvents>;

pub struct ResidentNet {
    res: XenResidency,
    /// Netfront's link went down (the backend broke the ring protocol)
    /// and a `net_device` event said so.
    link_down_said: bool,
    /// Times netback's silence on our transmits; it restarts netfront.
    tx_watchdog: TxWatchdog,
    /// The last restart failed: the device is down until one works.
    restart_failed: bool,
}

fn notification(chan: &ChannelOptions<'_>) -> String {
    match (chan.poll, chan.spin_us) {
        (true, _) => "polled".into(),
        (false, 0) => "event-driven".into(),
        (false, us) => format!("event-driven after {us} us of polling"),
    }
}

/// The kernel's clock for the close loop: it sleeps.
struct Sleeping;

impl residency::Clock for Sleeping {
    fn now_ns(&mut self) -> u64 {
        now_ns()
    }

    fn pause(&mut self, ns: u64) {
        crate::clock::sleep(ns);
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
        let group = chan.group.map(Group::new).transpose().map_err(|e| format!("net.group: {e}"))?;
        let mut res = Residency::new(net, XenGrants, XenEvents, Options { me, mac, channel: config, group, ipv4 });
        let advert = with_xenstore(|c| res.advertise(c, now_ns())).ok_or("no xenstore client")?.map_err(|e| e.to_string())?;
        match advert {
            None => log::info!("residency: no net.group: every frame takes netfront"),
            Some(advert) => log::info!(
                "residency: advertised `{}` in group `{}`; channels: {} pages per ring, MTU {}, {}",
                advert.to_value(),
                advert.group,
                chan.pages,
                chan.mtu,
                notification(chan)
            ),
        }
        Ok(ResidentNet { res, link_down_said: false, tx_watchdog: TxWatchdog::new(TX_STALL_NS), restart_failed: false })
    }

    /// The data path every round; the xenstore side when it is due, with
    /// the watch events of the device's tokens.
    fn service_residency(&mut self, now: u64) {
        if !self.res.data_service(now) {
            return;
        }
        with_xenstore(|c| {
            let fired = Fired { peers: !watches::take(c, PEERS_TOKEN).is_empty(), offers: watches::take(c, OFFERS_TOKEN) };
            self.res.housekeeping(c, &fired, now);
        });
        self.log_events();
    }

    /// Netfront stops for good when the backend breaks the ring protocol
    /// (it counts that in `bad_responses`); say so once, as an event,
    /// instead of going quiet.
    fn say_link_down(&mut self) {
        let nf = self.res.fallback_ref();
        if self.link_down_said || nf.is_up() {
            return;
        }
        self.link_down_said = true;
        let mac = Mac(nf.mac()).to_string();
        log::error!("netfront: link down, the backend broke the ring protocol: {:?}", nf.counters().bad_responses);
        crate::println!("{}", ResultLine::NetDevice { device: "netfront", mac: &mac, link_up: false });
    }

    /// Restarts netfront once netback has taken none of its transmits
    /// for [`TX_STALL_NS`]: a netback that no longer hears us (issue 14)
    /// only recovers when the vif connects again. After a restart that
    /// failed, tries again on the watchdog's backoff.
    fn watch_netfront(&mut self, now: u64) {
        let nf = self.res.fallback_ref();
        let progress = nf.tx_progress();
        let due = if self.restart_failed {
            self.tx_watchdog.restart_due(now).then_some(0)
        } else if nf.is_up() {
            self.tx_watchdog.stalled(progress, now)
        } else {
            // The backend broke the ring protocol: stopped for good
            // (say_link_down).
            None
        };
        let Some(stalled_ns) = due else { return };
        let stalled_ms = stalled_ns / 1_000_000;
        if self.restart_failed {
            log::warn!("netfront: connecting again");
        } else {
            log::warn!("netfront: netback took none of {} transmits for {stalled_ms} ms: connecting again", progress.outstanding);
        }
        let result = xnet::restart(self.res.fallback());
        self.tx_watchdog.restarted(progress.answered, now_ns());
        let error = result.as_ref().err().map(String::as_str);
        let mac = Mac(self.res.mac()).to_string();
        match error {
            None => {
                log::info!("netfront: connected again");
                if self.restart_failed || self.link_down_said {
                    crate::println!("{}", ResultLine::NetDevice { device: "netfront", mac: &mac, link_up: true });
                }
                self.restart_failed = false;
                self.link_down_said = false;
            }
            Some(e) => {
                log::error!("netfront: could not connect again, the device is down until a later try: {e}");
                if !self.link_down_said {
                    crate::println!("{}", ResultLine::NetDevice { device: "netfront", mac: &mac, link_up: false });
                }
                self.restart_failed = true;
                self.link_down_said = true;
            }
        }
        let ok = error.is_none();
        crate::println!("{}", ResultLine::NetfrontRestarted { stalled_ms, tx_outstanding: progress.outstanding, ok, error });
    }

    fn log_events(&mut self) {
        for event in self.res.take_events() {
            log_event(event);
        }
    }
}

fn log_event(event: Event) {
    match event {
        Event::Listed(list) => {
            let names: Vec<String> = list.peers().iter().map(|p| format!("dom{} ({})", p.domid, Mac(p.mac))).collect();
            log::info!("residency: dom0 lists co-resident peers: [{}]", names.join(", "));
        }
        Event::BadList { value, why } => log::warn!("residency: dom0's peer list `{value}`: {why}; ignored"),
        Event::ListUnreadable { path, why } => log::warn!("residency: reading {path}: {why}"),
        Event::Channel { note, listed_at_ns } => log_note(note, listed_at_ns),
    }
}

fn log_note(note: Note, listed_at_ns: Option<u64>) {
    let xen_time = super::time::system_time_ns();
    match note {
        Note::Offered { peer } => log::debug!("channel to dom{peer}: offered"),
        Note::Up { peer, mac } => {
            let since = listed_at_ns.map_or(0, |t| now_ns().saturating_sub(t));
            log::info!(
                "channel to dom{peer} ({}): up, {}.{:03} ms after dom0 listed it (Xen time {xen_time} ns)",
                Mac(mac),
                since / 1_000_000,
                since / 1000 % 1000
            );
            let mac = Mac(mac).to_string();
            crate::println!(
                "{}",
                ResultLine::ChannelUp { peer, mac: mac.as_str(), after_listed_ms: since as f64 / 1e6, xen_time_ns: xen_time }
            );
        }
        Note::Down { peer, mac, why, was_up } => {
            if was_up {
                log::warn!(
                    "channel to dom{peer}: closed ({why}); frames to {} fall back to netfront (Xen time {xen_time} ns)",
                    Mac(mac)
                );
            } else {
                log::info!("channel to dom{peer}: not set up ({why})");
            }
            let mac = Mac(mac).to_string();
            crate::println!(
                "{}",
                ResultLine::ChannelClosed { peer, mac: mac.as_str(), why: why.as_str(), was_up, xen_time_ns: xen_time }
            );
        }
        Note::Refused { peer, why } => {
            log::warn!("channel to dom{peer}: refused: {why}");
            crate::println!("{}", ResultLine::ChannelRefused { peer, why: why.as_str() });
        }
        Note::Released { peer } => {
            log::info!("channel to dom{peer}: released (every grant revoked, pages freed)");
            crate::println!("{}", ResultLine::<&str>::ChannelReleased { peer });
            print_resources("channel_released");
        }
        Note::Failed { peer, why } => log::warn!("channel to dom{peer}: {why}"),
    }
}

/// The guest's live counts (an `EVENT resources` line): what a scenario
/// compares across peer lifecycles to see that nothing leaks. Netfront's
/// refs apart: its transmits in flight make them vary.
fn print_resources(after: &str) {
    let (_, mapped, pages) = grants::in_use();
    let (netfront_refs, refs) = grants::refs_by_pool();
    let usage = crate::memory::usage();
    crate::println!(
        "{}",
        ResultLine::Resources {
            after,
            grant_refs: refs as u64,
            netfront_refs: netfront_refs as u64,
            ports: super::events::open_ports() as u64,
            mapped: u64::from(mapped),
            pages: u64::from(pages),
            heap_used: usage.heap_used as u64,
            frames: usage.frames_allocated as u64,
        }
    );
}

impl Device for ResidentNet {
    type RxToken<'a>
        = <XenResidency as Device>::RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = <XenResidency as Device>::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.res.receive(now)
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        self.res.transmit(now)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.res.capabilities()
    }
}

impl Paths for ResidentNet {
    fn channels_up(&self) -> usize {
        self.res.channels_up()
    }

    fn settling(&self) -> bool {
        self.res.settling()
    }

    fn hold(&mut self, held: bool) {
        self.res.hold(held, now_ns());
        self.log_events();
    }

    fn track_tcp(&mut self, on: bool) {
        self.res.switch().track_tcp(on);
    }

    fn tcp_sent(&self) -> Option<TcpSent> {
        self.res.switch_ref().tcp_sent()
    }

    fn tcp_received(&self) -> Option<TcpSent> {
        self.res.switch_ref().tcp_received()
    }

    fn detection(&self) -> Option<Detection> {
        self.res.detection()
    }

    fn frames(&self) -> PathFrames {
        let s = self.res.counters();
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
        self.res.mac()
    }

    fn kind(&self) -> &'static str {
        "netfront"
    }

    fn service(&mut self) {
        self.res.fallback().handle_event();
        // One clock read a round: it is the dearest part of a quiet one.
        let now = now_ns();
        self.watch_netfront(now);
        self.say_link_down();
        self.service_residency(now);
    }

    fn prepare_idle(&mut self) -> bool {
        self.res.switch().arm()
    }

    fn wants_polling(&self) -> bool {
        self.res.switch_ref().wants_polling()
    }

    fn tx_blocked(&self) -> bool {
        self.res.switch_ref().tx_blocked()
    }

    fn counters(&self) -> String {
        format!("{}; {}", xnet::counters_line(self.res.fallback_ref()), self.res.counters_line())
    }

    fn figures(&self) -> Vec<(&'static str, f64, &'static str)> {
        let mut figures = xnet::figures(self.res.fallback_ref());
        figures.extend(self.res.figures());
        figures
    }

    fn paths(&mut self) -> Option<&mut dyn Paths> {
        Some(self)
    }

    fn shutdown(&mut self) -> Result<String, String> {
        // Channels first (peers see Closed and unmap our pages), bounded.
        let channels_released = with_xenstore(|c| self.res.close(c, &mut Sleeping)).unwrap_or(false);
        self.log_events();
        let closed = xnet::close(self.res.fallback());
        let (refs, mapped, pages) = grants::in_use();
        let how = format!(
            "{}; channels {}; grant refs in use {refs}, mapped {mapped}, pages {pages}",
            closed.as_deref().unwrap_or_else(|e| e.as_str()),
            if channels_released { "closed" } else { "NOT all released" }
        );
        let clean = closed.is_ok() && channels_released && refs == 0 && mapped == 0 && pages == 0;
        crate::println!(
            "{}",
            ResultLine::DeviceClosed {
                device: "netfront",
                clean,
                netfront_closed: closed.is_ok(),
                channels_released,
                grant_refs: refs as u64,
                mapped: u64::from(mapped),
                pages: u64::from(pages),
            }
        );
        if clean {
            Ok(how)
        } else {
            Err(how)
        }
    }
}
