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
//!
//! The stack computes no checksum, and may build TCP packets of up to
//! 64 KiB (segmentation offload). The switch does what each path needs:
//! nothing for a channel (memory is not a wire), which takes a large
//! packet whole or has it cut to its MTU; for the fallback, checksums
//! (or leaving them to it) and cutting (or having it cut them, GSO).

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::num::NonZeroUsize;

use smoltcp::phy::{Device, DeviceCapabilities, Medium, PacketMeta, RxToken, TxToken};
use smoltcp::time::Instant;
use xen_proto::iface::{DomId, EventChannels, RegionGrants, XenstoreRing};
use xen_proto::xenstore::Client;

use channel::ring::ETH_FRAME;
use channel::{Manager, SendError};

use netdev::{TcpSent, TcpSentTracker};

use crate::checksum;
use crate::counters::SwitchCounters;
use crate::gso;

/// A channel with no room for this long is taken for a peer that stopped
/// reading: it is closed and its traffic falls back.
pub const STUCK_AFTER_NS: u64 = 2_000_000_000;
/// Frames for the fallback waiting for its room (segmentation makes
/// several of one); beyond this they are dropped (TCP sends them again).
const FALLBACK_QUEUE: usize = 128;

/// Misaddressed channel frames dropped per receive call at most.
pub const MISADDRESSED_PER_CALL: u32 = 64;
/// The largest TCP packet the stack may hand us for cutting (the IPv4
/// total length is 16 bits).
pub const MAX_TSO_FRAME: usize = 0xffff;

/// What the fallback takes off the switch's hands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FallbackOffloads {
    /// It completes TCP/UDP checksums (and the switch computes only the
    /// others).
    pub csum: bool,
    /// It cuts TCP packets of up to this many bytes (GSO).
    pub gso_max: Option<usize>,
}

/// What to do with a frame besides carrying it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FallbackMeta {
    /// Its TCP/UDP checksum is left to the fallback.
    pub csum: bool,
    /// The fallback cuts it into TCP segments of this many payload bytes.
    pub gso_size: Option<u16>,
}

/// Why the fallback did not take a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FallbackFull {
    /// No room now: queue it and try again.
    NoRoom,
    /// Refused for good (down, malformed): drop it.
    Refused,
}

/// The path to everything that is not a co-resident peer (netfront on Xen).
pub trait FallbackDevice {
    /// The largest frame it carries as one (1514 on an Ethernet bridge).
    fn max_frame(&self) -> usize;
    fn offloads(&self) -> FallbackOffloads;
    /// Whether a received frame is waiting (looking at the device if none).
    fn has_rx(&mut self) -> bool;
    /// Copies the next received frame into `frame`: whether its checksums
    /// were vouched for by whoever delivered it (then they are not
    /// checked), or None if nothing was waiting.
    fn receive_into(&mut self, frame: &mut Vec<u8>) -> Option<bool>;
    /// Whether a frame can be sent now.
    fn can_send(&mut self) -> bool;
    fn send(&mut self, frame: &[u8], meta: FallbackMeta) -> Result<(), FallbackFull>;
}

/// netfront, the fallback on Xen.
impl<G: xen_proto::iface::GrantTable, E: EventChannels> FallbackDevice for netfront::Netfront<G, E> {
    fn max_frame(&self) -> usize {
        netfront::wire::MAX_FRAME
    }

    fn offloads(&self) -> FallbackOffloads {
        let tx = self.negotiated().tx;
        FallbackOffloads { csum: tx.csum, gso_max: tx.gso.then_some(netfront::wire::MAX_PACKET) }
    }

    fn has_rx(&mut self) -> bool {
        self.next_rx_meta().is_some()
    }

    fn receive_into(&mut self, frame: &mut Vec<u8>) -> Option<bool> {
        netfront::Netfront::receive_into(self, frame).map(|m| m.vouched())
    }

    fn can_send(&mut self) -> bool {
        if !self.can_transmit() {
            self.poll();
        }
        self.can_transmit()
    }

    fn send(&mut self, frame: &[u8], meta: FallbackMeta) -> Result<(), FallbackFull> {
        let meta = netfront::TxMeta { csum: meta.csum, gso_size: meta.gso_size };
        match netfront::Netfront::send(self, frame, meta) {
            Ok(()) => Ok(()),
            Err(netfront::TxError::Full) => Err(FallbackFull::NoRoom),
            Err(_) => Err(FallbackFull::Refused),
        }
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
    /// The largest frame the fallback carries, and what it offloads.
    fallback_frame: usize,
    offloads: FallbackOffloads,
    /// How large a TCP packet the stack may build (beyond the MTU).
    tso: Option<usize>,
    /// Frames for the fallback that found no room, oldest first.
    pending: VecDeque<(Vec<u8>, FallbackMeta)>,
    /// A frame built outside any ring, and room to build one more.
    scratch: Vec<u8>,
    spare: Vec<u8>,
    /// Where a large packet's pieces are cut.
    pieces: Vec<u8>,
    /// Channels found full by transmit tokens, noted at the next service.
    found_full: Vec<DomId>,
    /// Problems the data path found, acted on at the next service.
    failures: Vec<(DomId, &'static str)>,
    counters: SwitchCounters,
    /// TCP bytes sent and sent again, while a measurement asks (boxed:
    /// its 16 flows would otherwise add their size to every switch).
    tcp_sent: Option<Box<TcpSentTracker>>,
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
    /// TCP bytes received, and those that arrived behind a later byte,
    /// while a measurement asks.
    tcp_received: Option<Box<TcpSentTracker>>,
}

impl<D: FallbackDevice, G: RegionGrants + Clone, E: EventChannels + Clone> Switch<D, G, E> {
    /// `channels`: whether peers may get channels at all (the guest is in
    /// a group).
    pub fn new(fallback: D, manager: Manager<G, E>, mac: [u8; 6], channels: bool) -> Self {
        let fallback_frame = fallback.max_frame().max(ETH_FRAME);
        let offloads = fallback.offloads();
        let max_frame = manager.config().max_frame.max(fallback_frame);
        // Large TCP packets pay when a path takes them whole. With channels,
        // no larger than their frames, so that a packet is built in place
        // in a ring, whole: one cut into pieces for a ring can find it full
        // halfway. Without, as large as the fallback's GSO takes.
        let channel_frame = manager.config().max_frame;
        let tso = if channels {
            (channel_frame > ETH_FRAME).then(|| channel_frame.min(MAX_TSO_FRAME))
        } else {
            offloads.gso_max.map(|max| max.min(MAX_TSO_FRAME))
        };
        let build = tso.unwrap_or(max_frame).max(max_frame);
        Switch {
            fallback,
            paths: Paths {
                manager,
                last_peer: None,
                max_frame,
                fallback_frame,
                offloads,
                tso,
                pending: VecDeque::new(),
                scratch: vec![0; build],
                spare: vec![0; build],
                pieces: Vec::new(),
                found_full: Vec::new(),
                failures: Vec::new(),
                counters: SwitchCounters::default(),
                tcp_sent: None,
            },
            mac,
            rx_frame: Vec::with_capacity(build),
            channels_first: false,
            full_since: BTreeMap::new(),
            tx_blocked_on: None,
            bad_checksums: 0,
            now_ns: 0,
            channel_active_ns: 0,
            channel_frames_seen: 0,
            tcp_received: None,
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

    /// Starts counting the TCP payload this side sends and receives, and
    /// what of it went again (from zero), or stops.
    pub fn track_tcp(&mut self, on: bool) {
        self.paths.tcp_sent = on.then(Box::default);
        self.tcp_received = on.then(Box::default);
    }

    /// What was counted since tracking began (None: not tracking).
    pub fn tcp_sent(&self) -> Option<TcpSent> {
        self.paths.tcp_sent.as_deref().map(TcpSentTracker::sent)
    }

    /// The same for what arrived: the peer's payload, and the part that
    /// arrived behind a later byte (lost and sent again, or reordered).
    pub fn tcp_received(&self) -> Option<TcpSent> {
        self.tcp_received.as_deref().map(TcpSentTracker::sent)
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
        self.paths.flush_pending(&mut self.fallback);
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
    fn flush_pending<D: FallbackDevice>(&mut self, fallback: &mut D) {
        while let Some((frame, meta)) = self.pending.front() {
            match fallback.send(frame, *meta) {
                Ok(()) => {
                    self.counters.tx_fallback_frames += 1;
                    self.counters.tx_fallback_bytes += frame.len() as u64;
                }
                Err(FallbackFull::NoRoom) => return,
                Err(FallbackFull::Refused) => self.counters.tx_drops += 1,
            }
            self.pending.pop_front();
        }
    }

    /// The next frame from a channel into `rx_frame`: true if there is one.
    /// Frames not from the peer's MAC to ours are dropped (and counted), at
    /// most [`MISADDRESSED_PER_CALL`] per call: a peer that keeps writing
    /// them cannot hold us in this loop.
    fn receive_from_channels(&mut self, mac: [u8; 6], rx_frame: &mut Vec<u8>) -> bool {
        let mut budget = MISADDRESSED_PER_CALL;
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
                        budget -= 1;
                        if budget == 0 {
                            return false;
                        }
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

    /// Hands one finished frame to the fallback, behind any queued ones.
    fn fallback_send<D: FallbackDevice>(&mut self, fallback: &mut D, frame: &[u8], meta: FallbackMeta) {
        if self.pending.is_empty() {
            match fallback.send(frame, meta) {
                Ok(()) => {
                    self.counters.tx_fallback_frames += 1;
                    self.counters.tx_fallback_bytes += frame.len() as u64;
                    return;
                }
                Err(FallbackFull::Refused) => {
                    self.counters.tx_drops += 1;
                    return;
                }
                Err(FallbackFull::NoRoom) => {}
            }
        }
        if self.pending.len() < FALLBACK_QUEUE {
            self.pending.push_back((frame.to_vec(), meta));
        } else {
            self.counters.tx_drops += 1;
        }
    }

    /// Sends the frame in `scratch[..len]` to where it belongs: the channel
    /// to its destination if up (whole, or cut to its MTU), else the
    /// fallback (whole, with GSO, or cut). `gso` is the segment size the
    /// stack asked for, if it built a packet larger than the MTU.
    fn route<D: FallbackDevice>(&mut self, len: usize, gso: Option<u16>, fallback: &mut D) {
        let channel = dst_mac(&self.scratch[..len]).filter(is_unicast).and_then(|mac| self.manager.up_peer_for_mac(&mac));
        if let Some(peer) = channel {
            self.channel_send_or_cut(peer, len, gso);
            return;
        }
        self.last_peer = None;
        let mut scratch = core::mem::take(&mut self.scratch);
        self.fallback_send_or_cut(fallback, &mut scratch[..len], gso);
        self.scratch = scratch;
    }

    fn channel_send_or_cut(&mut self, peer: DomId, len: usize, gso: Option<u16>) {
        let Some(limit) = self.manager.channel(peer).map(|c| c.send_limit()) else {
            self.counters.tx_drops += 1;
            return;
        };
        let scratch = core::mem::take(&mut self.scratch);
        let frame = &scratch[..len];
        let sent = |paths: &mut Self, piece: &[u8]| match paths.manager.channel(peer).map(|ch| ch.send(piece)) {
            Some(Ok(())) => {
                paths.counters.tx_channel_frames += 1;
                paths.counters.tx_channel_bytes += piece.len() as u64;
                paths.last_peer = Some(peer);
            }
            Some(Err(e)) => {
                paths.counters.tx_drops += 1;
                paths.channel_error(peer, e);
            }
            None => paths.counters.tx_drops += 1,
        };
        if len <= limit {
            sent(self, frame);
        } else {
            let mut pieces = core::mem::take(&mut self.pieces);
            let mss = gso.map_or(usize::MAX, usize::from);
            let cut = gso::segment(frame, limit, mss, &mut pieces, |piece| sent(self, piece));
            self.pieces = pieces;
            if cut {
                self.counters.tx_segmented += 1;
            } else {
                // Larger than the channel carries and not TCP: no way out.
                self.counters.tx_drops += 1;
            }
        }
        self.scratch = scratch;
    }

    /// A frame for the fallback: checksums as its offloads allow; a TCP
    /// packet larger than its frames goes with GSO or is cut here.
    fn fallback_send_or_cut<D: FallbackDevice>(&mut self, fallback: &mut D, frame: &mut [u8], gso: Option<u16>) {
        let csum = self.offloads.csum;
        let fill = |f: &mut [u8]| if csum { checksum::fill_but_l4(f) } else { checksum::fill(f) };
        let meta = FallbackMeta { csum, gso_size: None };
        if frame.len() <= self.fallback_frame {
            fill(frame);
            self.fallback_send(fallback, frame, meta);
            return;
        }
        let Some((headers, _)) = gso::tcp_headers(frame) else {
            // Larger than the fallback carries and not TCP: no way out.
            self.counters.tx_drops += 1;
            return;
        };
        // The segment size the fallback's frames allow, or the stack's if
        // smaller (the peer's MSS, TCP options).
        let mss = self.fallback_frame.saturating_sub(headers).min(gso.map_or(usize::MAX, usize::from));
        match self.offloads.gso_max {
            Some(max) if csum && frame.len() <= max && mss > 0 => {
                fill(frame);
                let meta = FallbackMeta { csum: true, gso_size: Some(mss as u16) };
                self.fallback_send(fallback, frame, meta);
                self.counters.tx_gso += 1;
            }
            _ => {
                let mut pieces = core::mem::take(&mut self.pieces);
                let cut = gso::segment(frame, self.fallback_frame, mss, &mut pieces, |piece| {
                    fill(piece);
                    self.fallback_send(fallback, piece, meta);
                });
                self.pieces = pieces;
                if cut {
                    self.counters.tx_segmented += 1;
                } else {
                    self.counters.tx_drops += 1;
                }
            }
        }
    }
}

/// A received frame, copied out of its path once (a channel's ring, or the
/// fallback with checksums checked here: the stack checks none).
pub struct SwitchRxToken<'a>(&'a [u8]);

impl RxToken for SwitchRxToken<'_> {
    fn consume<T, F: FnOnce(&[u8]) -> T>(self, f: F) -> T {
        f(self.0)
    }
}

/// Room for one outgoing frame, on whichever path it turns out to need.
pub struct SwitchTxToken<'a, D: FallbackDevice, G: RegionGrants + Clone, E: EventChannels + Clone> {
    fallback: &'a mut D,
    paths: &'a mut Paths<G, E>,
    /// The segment size the stack asked for (a packet larger than the MTU).
    gso: Option<u16>,
}

impl<D: FallbackDevice, G: RegionGrants + Clone, E: EventChannels + Clone> TxToken for SwitchTxToken<'_, D, G, E> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let SwitchTxToken { fallback, paths, gso } = self;
        if len > paths.scratch.len() {
            // Larger than any path carries: let the stack build it, drop it.
            paths.counters.tx_drops += 1;
            return f(&mut vec![0u8; len]);
        }
        let guess = paths.last_peer.and_then(|p| Some((p, paths.manager.mac_of(p)?)));
        let Some((peer, peer_mac)) = guess else {
            let out = f(&mut paths.scratch[..len]);
            if let Some(t) = &mut paths.tcp_sent {
                t.note(&paths.scratch[..len]);
            }
            paths.route(len, gso, fallback);
            return out;
        };
        let scratch = &mut paths.scratch;
        let tcp_sent = &mut paths.tcp_sent;
        // Build in the guessed ring; keep a copy aside if it is not for
        // that peer after all.
        let build = move |buf: &mut [u8]| {
            let out = f(buf);
            if let Some(t) = tcp_sent {
                t.note(buf);
            }
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
                paths.route(len, gso, fallback);
                out
            }
            Err((e, build)) => {
                let mut spare = core::mem::take(&mut paths.spare);
                let (out, ours) = build(&mut spare[..len]);
                if ours {
                    paths.scratch[..len].copy_from_slice(&spare[..len]);
                }
                paths.spare = spare;
                // A packet too large for the ring is cut, not a failure.
                if e != SendError::BadLength {
                    paths.channel_error(peer, e);
                }
                paths.route(len, gso, fallback);
                out
            }
        }
    }

    fn set_meta(&mut self, meta: PacketMeta) {
        self.gso = meta.segmentation_offload_size.map(|s| s.get());
    }
}

impl<D: FallbackDevice, G: RegionGrants + Clone, E: EventChannels + Clone> Device for Switch<D, G, E> {
    type RxToken<'a>
        = SwitchRxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = SwitchTxToken<'a, D, G, E>
    where
        Self: 'a;

    fn receive(&mut self, _now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.channels_first = !self.channels_first;
        let Switch { fallback, paths, mac, rx_frame, bad_checksums, channels_first, tcp_received, .. } = self;
        let fallback_ready = fallback.has_rx();
        let from_channel = (*channels_first || !fallback_ready) && paths.receive_from_channels(*mac, rx_frame);
        if !from_channel {
            if !fallback_ready {
                return None;
            }
            let vouched = fallback.receive_into(rx_frame)?;
            paths.counters.rx_fallback_frames += 1;
            if !vouched && !checksum::verify(rx_frame) {
                // The stack drops an empty frame like any runt.
                *bad_checksums += 1;
                rx_frame.clear();
            }
        }
        if let Some(t) = tcp_received {
            t.note(rx_frame);
        }
        Some((SwitchRxToken(rx_frame), SwitchTxToken { fallback, paths, gso: None }))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Self::TxToken<'_>> {
        let Switch { fallback, paths, full_since, tx_blocked_on, .. } = self;
        paths.flush_pending(fallback);
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
        if !paths.pending.is_empty() || (!fallback.can_send() && !paths.manager.any_up()) {
            return None;
        }
        Some(SwitchTxToken { fallback, paths, gso: None })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.paths.max_frame;
        // The switch does the fallback path's checksums (see `checksum`).
        caps.checksum = smoltcp::phy::ChecksumCapabilities::ignored();
        caps.segmentation.tcpv4 = self.paths.tso.and_then(NonZeroUsize::new);
        caps
    }
}
