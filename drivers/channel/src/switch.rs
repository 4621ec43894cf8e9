//! The device the stack sees: one MAC, one interface. Each outgoing frame
//! goes over the channel to its destination when that peer's channel is
//! up, else over the fallback device (netfront); incoming frames from every
//! path feed the same stack.
//!
//! A frame's destination is only known once the stack has built it, so the
//! transmit token guesses: it lends the stack room in the ring of the
//! channel the previous frame took. A frame for that peer is published
//! where it was built; any other is copied to its path and the ring room is
//! left unpublished.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use smoltcp::phy::{Device, DeviceCapabilities, RxToken, TxToken};
use smoltcp::time::Instant;
use xen_proto::iface::{DomId, EventChannels, RegionGrants, XenstoreRing};
use xen_proto::xenstore::Client;

use crate::channel::SendError;
use crate::checksum;
use crate::counters::SwitchCounters;
use crate::manager::Manager;
use crate::gso;
use crate::ring::ETH_FRAME;

/// A channel with no room for this long is taken for a peer that stopped
/// reading: it is closed and its traffic falls back.
pub const STUCK_AFTER_NS: u64 = 2_000_000_000;
/// Frames for the fallback waiting for its room (segmentation makes
/// several of one); beyond this they are dropped (TCP sends them again).
const FALLBACK_QUEUE: usize = 128;

/// What the switch needs of its fallback beyond [`Device`].
pub trait FallbackDevice: Device {
    /// Whether `receive` would return a frame now.
    fn has_rx(&mut self) -> bool;
}

/// netfront, the fallback on Xen.
impl<G: xen_proto::iface::GrantTable, E: EventChannels> FallbackDevice for netfront::Netfront<G, E> {
    fn has_rx(&mut self) -> bool {
        if self.rx_queued() == 0 {
            self.poll();
        }
        self.rx_queued() > 0
    }
}

fn dst_mac(frame: &[u8]) -> Option<[u8; 6]> {
    frame.get(..6).and_then(|d| d.try_into().ok())
}

fn is_unicast(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 0
}

/// What transmitting needs: the channels, where frames are built, what
/// waits for the fallback, and the counters. Lent to transmit tokens.
pub struct Paths<G: RegionGrants + Clone, E: EventChannels + Clone> {
    manager: Manager<G, E>,
    /// The channel the last frame went to: where the next one is built.
    last_peer: Option<DomId>,
    /// The largest frame the stack may build: the channels', if larger
    /// than the fallback's.
    max_frame: usize,
    /// The largest frame the fallback carries.
    fallback_frame: usize,
    /// Frames for the fallback that have no transmit token yet.
    pending: VecDeque<Vec<u8>>,
    /// A frame built outside any ring, and room to build one more.
    scratch: Vec<u8>,
    spare: Vec<u8>,
    /// Channels found full by transmit tokens, noted at the next service.
    found_full: Vec<DomId>,
    /// Problems the data path found, acted on at the next service.
    failures: Vec<(DomId, &'static str)>,
    counters: SwitchCounters,
}

pub struct Switch<D: FallbackDevice, G: RegionGrants + Clone, E: EventChannels + Clone> {
    fallback: D,
    paths: Paths<G, E>,
    mac: [u8; 6],
    /// The frame received from a channel, handed to the stack.
    rx_frame: Vec<u8>,
    /// Look at the channels first (else the fallback), alternately.
    channels_first: bool,
    /// Since when each channel has had no room.
    full_since: BTreeMap<DomId, u64>,
    /// The channel whose full ring made `transmit` hold the stack back.
    tx_blocked_on: Option<DomId>,
    /// Fallback frames dropped for a bad checksum.
    bad_checksums: u64,
    now_ns: u64,
    /// When a frame last went over a channel, either way (as seen by the
    /// service after it), and the counts that tell.
    channel_active_ns: u64,
    channel_frames_seen: u64,
}

impl<D: FallbackDevice, G: RegionGrants + Clone, E: EventChannels + Clone> Switch<D, G, E> {
    pub fn new(fallback: D, manager: Manager<G, E>, mac: [u8; 6]) -> Self {
        let fallback_frame = fallback.capabilities().max_transmission_unit.max(ETH_FRAME);
        let max_frame = manager.config().max_frame.max(fallback_frame);
        Switch {
            fallback,
            paths: Paths {
                manager,
                last_peer: None,
                max_frame,
                fallback_frame,
                pending: VecDeque::new(),
                scratch: vec![0; max_frame],
                spare: vec![0; max_frame],
                found_full: Vec::new(),
                failures: Vec::new(),
                counters: SwitchCounters::default(),
            },
            mac,
            rx_frame: Vec::with_capacity(max_frame),
            channels_first: false,
            full_since: BTreeMap::new(),
            tx_blocked_on: None,
            bad_checksums: 0,
            now_ns: 0,
            channel_active_ns: 0,
            channel_frames_seen: 0,
        }
    }

    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    pub fn fallback(&mut self) -> &mut D {
        &mut self.fallback
    }

    pub fn fallback_ref(&self) -> &D {
        &self.fallback
    }

    pub fn manager(&mut self) -> &mut Manager<G, E> {
        &mut self.paths.manager
    }

    pub fn manager_ref(&self) -> &Manager<G, E> {
        &self.paths.manager
    }

    pub fn counters(&self) -> SwitchCounters {
        SwitchCounters { rx_bad_checksums: self.bad_checksums, ..self.paths.counters }
    }

    /// The data path's housekeeping, cheap enough for every round: queued
    /// fallback frames, channel events, full rings, failures the data path
    /// found.
    pub fn data_service(&mut self, now_ns: u64) {
        self.now_ns = now_ns;
        let frames = self.paths.counters.tx_channel_frames + self.paths.counters.rx_channel_frames;
        if frames != self.channel_frames_seen {
            self.channel_frames_seen = frames;
            self.channel_active_ns = now_ns;
        }
        self.paths.flush_pending(&mut self.fallback, Instant::from_micros((now_ns / 1000) as i64));
        let manager = &mut self.paths.manager;
        for i in 0..manager.attached_peers().len() {
            let peer = manager.attached_peers()[i];
            if let Some(ch) = manager.channel(peer) {
                ch.take_event();
            }
        }
        self.note_full();
        for (peer, why) in core::mem::take(&mut self.paths.failures) {
            self.paths.manager.fail(peer, why, now_ns);
            self.full_since.remove(&peer);
        }
        let paths = &mut self.paths;
        if paths.last_peer.is_some_and(|p| paths.manager.channel(p).is_none_or(|c| !c.is_up())) {
            paths.last_peer = None;
        }
    }

    /// All housekeeping: [`Switch::data_service`] and the manager's
    /// xenstore work (`fired`: paths of its watch events). `now_ns` drives
    /// the manager's and the switch's timeouts.
    pub fn service<R: XenstoreRing>(&mut self, c: &mut Client<R>, fired: &[String], now_ns: u64) {
        self.data_service(now_ns);
        self.paths.manager.service(c, fired, now_ns);
    }

    /// Before idling: asks every channel's peer for an event on its next
    /// frame, and the one whose full ring holds the stack back for an event
    /// when there is room. True if either arrived meanwhile (do not idle).
    pub fn arm(&mut self) -> bool {
        let manager = &mut self.paths.manager;
        let mut ready = false;
        for i in 0..manager.attached_peers().len() {
            let peer = manager.attached_peers()[i];
            if let Some(ch) = manager.channel(peer) {
                ready |= ch.arm_rx();
            }
        }
        if let Some(ch) = self.tx_blocked_on.and_then(|p| manager.channel(p)) {
            let limit = ch.send_limit();
            ready |= ch.arm_tx_space(limit);
        }
        ready
    }

    /// Whether the stack is held back by a full channel ring: then it has
    /// frames to send but should idle until the peer makes room.
    pub fn tx_blocked(&self) -> bool {
        self.tx_blocked_on.is_some()
    }

    /// Whether the stack should poll rather than block: channels are up and
    /// either configured to be polled or within the busy-poll window after
    /// the last frame on one (`Config::spin_ns`).
    pub fn wants_polling(&self) -> bool {
        let config = self.paths.manager.config();
        let spinning = self.now_ns.saturating_sub(self.channel_active_ns) < config.spin_ns;
        (config.polling || spinning) && self.paths.manager.any_up()
    }

    fn note_full(&mut self) {
        for peer in core::mem::take(&mut self.paths.found_full) {
            let since = *self.full_since.entry(peer).or_insert(self.now_ns);
            if self.now_ns.saturating_sub(since) >= STUCK_AFTER_NS {
                self.full_since.remove(&peer);
                self.paths.failures.push((peer, "the peer stopped consuming our ring"));
            }
        }
    }
}

impl<G: RegionGrants + Clone, E: EventChannels + Clone> Paths<G, E> {
    /// Sends queued fallback frames while the fallback has room.
    fn flush_pending<D: Device>(&mut self, fallback: &mut D, now: Instant) {
        while let Some(frame) = self.pending.front() {
            let Some(token) = fallback.transmit(now) else { return };
            token.consume(frame.len(), |buf| buf.copy_from_slice(frame));
            self.counters.tx_fallback_frames += 1;
            self.counters.tx_fallback_bytes += frame.len() as u64;
            self.pending.pop_front();
        }
    }

    /// The next frame from a channel into `rx_frame`: true if there is one.
    /// Frames not from the peer's MAC to ours are dropped (and counted).
    fn receive_from_channels(&mut self, mac: [u8; 6], rx_frame: &mut Vec<u8>) -> bool {
        for i in 0..self.manager.attached_peers().len() {
            let peer = self.manager.attached_peers()[i];
            let Some(peer_mac) = self.manager.mac_of(peer) else { continue };
            let Some(ch) = self.manager.channel(peer) else { continue };
            loop {
                match ch.recv_into(rx_frame) {
                    Ok(false) => break,
                    Ok(true) => {
                        if rx_frame.get(6..12) == Some(&peer_mac[..]) && rx_frame.get(..6) == Some(&mac[..]) {
                            self.counters.rx_channel_frames += 1;
                            self.counters.rx_channel_bytes += rx_frame.len() as u64;
                            return true;
                        }
                        self.counters.rx_misaddressed += 1;
                    }
                    Err(_) => {
                        self.counters.channel_violations += 1;
                        self.failures.push((peer, "the peer broke the ring protocol"));
                        break;
                    }
                }
            }
        }
        false
    }

    fn channel_error(&mut self, peer: DomId, e: SendError) {
        match e {
            SendError::Full => self.found_full.push(peer),
            SendError::Violation => self.failures.push((peer, "the peer published an impossible consumer index")),
            SendError::Down | SendError::BadLength => {}
        }
    }

    fn queue_for_fallback(&mut self, frame: &[u8]) {
        if self.pending.len() < FALLBACK_QUEUE {
            self.pending.push_back(frame.to_vec());
        } else {
            self.counters.tx_drops += 1;
        }
    }

    /// Sends the frame in `scratch[..len]` to where it belongs: the channel
    /// to its destination (if up and the frame not too large for it), else
    /// the fallback (through `token` or the queue), cut into standard frames
    /// if it must be.
    fn route<T: TxToken>(&mut self, len: usize, token: Option<T>) {
        let channel = dst_mac(&self.scratch[..len])
            .filter(is_unicast)
            .and_then(|mac| self.manager.up_peer_for_mac(&mac))
            .filter(|&peer| self.manager.channel(peer).is_some_and(|c| len <= c.send_limit()));
        if let Some(peer) = channel {
            let sent = self.manager.channel(peer).map(|ch| ch.send(&self.scratch[..len]));
            match sent {
                Some(Ok(())) => {
                    self.counters.tx_channel_frames += 1;
                    self.counters.tx_channel_bytes += len as u64;
                    self.last_peer = Some(peer);
                }
                Some(Err(e)) => {
                    self.counters.tx_drops += 1;
                    self.channel_error(peer, e);
                }
                None => self.counters.tx_drops += 1,
            }
            return;
        }
        self.last_peer = None;
        if len > self.fallback_frame {
            let scratch = core::mem::take(&mut self.scratch);
            let mut spare = core::mem::take(&mut self.spare);
            let cut = gso::segment(&scratch[..len], self.fallback_frame, &mut spare, |piece| self.queue_for_fallback(piece));
            (self.scratch, self.spare) = (scratch, spare);
            if cut {
                self.counters.tx_segmented += 1;
            } else {
                // Larger than the fallback carries and not TCP: no way out.
                self.counters.tx_drops += 1;
            }
        } else {
            checksum::fill(&mut self.scratch[..len]);
            if self.pending.is_empty() {
                if let Some(token) = token {
                    let frame = &self.scratch[..len];
                    token.consume(len, |buf| buf.copy_from_slice(frame));
                    self.counters.tx_fallback_frames += 1;
                    self.counters.tx_fallback_bytes += len as u64;
                    return;
                }
                self.counters.tx_drops += 1;
                return;
            }
            let scratch = core::mem::take(&mut self.scratch);
            self.queue_for_fallback(&scratch[..len]);
            self.scratch = scratch;
        }
        // The token sends the oldest queued frame; the rest go at the next
        // transmit or service.
        if let (Some(token), Some(frame)) = (token, self.pending.pop_front()) {
            token.consume(frame.len(), |buf| buf.copy_from_slice(&frame));
            self.counters.tx_fallback_frames += 1;
            self.counters.tx_fallback_bytes += frame.len() as u64;
        }
    }
}

/// A received frame: from a channel (already copied out of the peer's
/// ring) or from the fallback device (checksums checked here, the stack
/// checks none; the counter counts bad ones).
pub enum SwitchRxToken<'a, R: RxToken> {
    Channel(&'a [u8]),
    Fallback(R, &'a mut u64),
}

impl<R: RxToken> RxToken for SwitchRxToken<'_, R> {
    fn consume<T, F: FnOnce(&[u8]) -> T>(self, f: F) -> T {
        match self {
            SwitchRxToken::Channel(frame) => f(frame),
            SwitchRxToken::Fallback(token, bad) => token.consume(|frame| {
                if checksum::verify(frame) {
                    f(frame)
                } else {
                    // The stack drops an empty frame like any runt.
                    *bad += 1;
                    f(&[])
                }
            }),
        }
    }
}

/// Room for one outgoing frame, on whichever path it turns out to need.
pub struct SwitchTxToken<'a, T: TxToken, G: RegionGrants + Clone, E: EventChannels + Clone> {
    fallback: Option<T>,
    paths: &'a mut Paths<G, E>,
}

impl<T: TxToken, G: RegionGrants + Clone, E: EventChannels + Clone> TxToken for SwitchTxToken<'_, T, G, E> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let SwitchTxToken { fallback, paths } = self;
        if len > paths.max_frame {
            // Larger than any path carries: let the stack build it, drop it.
            paths.counters.tx_drops += 1;
            return f(&mut vec![0u8; len]);
        }
        let guess = paths.last_peer.and_then(|p| Some((p, paths.manager.mac_of(p)?)));
        let Some((peer, peer_mac)) = guess else {
            let out = f(&mut paths.scratch[..len]);
            paths.route(len, fallback);
            return out;
        };
        let scratch = &mut paths.scratch;
        // Build in the guessed ring; keep a copy aside if it is not for
        // that peer after all.
        let build = move |buf: &mut [u8]| {
            let out = f(buf);
            let ours = dst_mac(buf) == Some(peer_mac);
            if !ours {
                scratch[..len].copy_from_slice(buf);
            }
            (out, ours)
        };
        let attempt = match paths.manager.channel(peer) {
            Some(ch) => ch.send_with(len, build),
            None => Err((SendError::Down, build)),
        };
        match attempt {
            Ok((out, true)) => {
                paths.counters.tx_channel_frames += 1;
                paths.counters.tx_channel_bytes += len as u64;
                paths.counters.tx_in_place += 1;
                out
            }
            Ok((out, false)) => {
                paths.route(len, fallback);
                out
            }
            Err((e, build)) => {
                let mut spare = core::mem::take(&mut paths.spare);
                let (out, ours) = build(&mut spare[..len]);
                if ours {
                    paths.scratch[..len].copy_from_slice(&spare[..len]);
                }
                paths.spare = spare;
                paths.channel_error(peer, e);
                paths.route(len, fallback);
                out
            }
        }
    }
}

impl<D: FallbackDevice, G: RegionGrants + Clone, E: EventChannels + Clone> Device for Switch<D, G, E> {
    type RxToken<'a>
        = SwitchRxToken<'a, D::RxToken<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = SwitchTxToken<'a, D::TxToken<'a>, G, E>
    where
        Self: 'a;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.channels_first = !self.channels_first;
        let Switch { fallback, paths, mac, rx_frame, bad_checksums, channels_first, .. } = self;
        let fallback_ready = fallback.has_rx();
        if (*channels_first || !fallback_ready) && paths.receive_from_channels(*mac, rx_frame) {
            let token = SwitchTxToken { fallback: fallback.transmit(now), paths };
            return Some((SwitchRxToken::Channel(rx_frame), token));
        }
        if !fallback_ready {
            return None;
        }
        let (rx, tx) = fallback.receive(now)?;
        paths.counters.rx_fallback_frames += 1;
        Some((SwitchRxToken::Fallback(rx, bad_checksums), SwitchTxToken { fallback: Some(tx), paths }))
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        let Switch { fallback, paths, full_since, tx_blocked_on, .. } = self;
        paths.flush_pending(fallback, now);
        // Backpressure: the channel the last frame took (a stream's) has no
        // room for another; the stack retries once the peer makes room.
        *tx_blocked_on = None;
        if let Some(peer) = paths.last_peer {
            if let Some(ch) = paths.manager.channel(peer).filter(|c| c.is_up()) {
                if !ch.can_send(ch.send_limit()) {
                    paths.found_full.push(peer);
                    paths.counters.tx_backpressure += 1;
                    *tx_blocked_on = Some(peer);
                    return None;
                }
                full_since.remove(&peer);
            }
        }
        let tx = fallback.transmit(now);
        if tx.is_none() && !paths.manager.any_up() {
            return None;
        }
        Some(SwitchTxToken { fallback: tx, paths })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = self.fallback.capabilities();
        caps.max_transmission_unit = self.paths.max_frame;
        // The switch does the fallback path's checksums (see `checksum`).
        caps.checksum = smoltcp::phy::ChecksumCapabilities::ignored();
        caps
    }
}
