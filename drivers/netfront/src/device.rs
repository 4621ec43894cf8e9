//! The driver: rings, buffers, grants and the event channel of one vif.
//!
//! Every buffer is one whole 4 KiB page, so no frame ever crosses a page
//! boundary. A buffer is granted to the backend only while a request
//! for it is outstanding (tx read-only, rx read-write) and revoked when
//! the response arrives; a revocation the hypervisor refuses (the
//! backend still maps the page) puts the buffer in quarantine, retried
//! on every poll, never reused until the revocation succeeds.
//!
//! This file holds the device and its data path; [`crate::lifecycle`]
//! connects and disconnects it, [`crate::tx`] and [`crate::rx`] run the
//! rings, [`crate::phy`] makes it a smoltcp device.

use alloc::vec::Vec;

use xen_proto::iface::{DomId, EventChannels, GrantTable, Port, SharedPage, PAGE_SIZE};

use crate::counters::Counters;
use crate::error::TxError;
use crate::features::{Negotiated, Offloads};
use crate::pool::Link;
use crate::ring::{RX_RING_SIZE, TX_RING_SIZE};
use crate::rx::{Rx, RxMeta};
use crate::tx::{Tx, TxMeta};
use crate::wire;
use crate::xenbus::VifNodes;

/// Buffer counts and the offloads to ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Receive pages kept posted (1..=256; with SG at least 18: a 64 KiB
    /// packet takes 17, and its GSO extra one more). Each holds a grant
    /// while posted.
    pub rx_buffers: u16,
    /// Transmit pages (1..=256; with SG at least 17); each holds a grant
    /// while in flight.
    pub tx_buffers: u16,
    /// The offloads to use where the backend agrees.
    pub offloads: Offloads,
}

impl Default for Config {
    /// Full rings: 256 + 256 buffer pages, so up to 514 grants and pages
    /// (2 MiB) with the two ring pages; every offload.
    fn default() -> Self {
        Config { rx_buffers: RX_RING_SIZE as u16, tx_buffers: TX_RING_SIZE as u16, offloads: Offloads::ALL }
    }
}

impl Config {
    pub(crate) fn valid(&self) -> bool {
        // With SG, room for the largest packet (and a GSO extra on rx).
        let slots = if self.offloads.sg { wire::MAX_PACKET.div_ceil(PAGE_SIZE) as u32 } else { 1 };
        (slots + u32::from(self.offloads.sg)..=RX_RING_SIZE).contains(&u32::from(self.rx_buffers))
            && (slots..=TX_RING_SIZE).contains(&u32::from(self.tx_buffers))
    }
}

/// Where we are in the xenbus life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Resources allocated, not (yet) published.
    Setup,
    /// Published `Connected` (the backend may or may not have followed).
    Published,
    /// Torn down; `state` walked back to `Initialising`.
    Closed,
}

/// A Xen network frontend over grant table `G` and event channels `E`.
pub struct Netfront<G: GrantTable, E: EventChannels> {
    pub(crate) link: Link<G, E>,
    pub(crate) tx: Tx<G::Page>,
    pub(crate) rx: Rx<G::Page>,
    pub(crate) counters: Counters,
    pub(crate) nodes: VifNodes,
    pub(crate) config: Config,
    pub(crate) negotiated: Negotiated,
    pub(crate) phase: Phase,
}

impl<G: GrantTable, E: EventChannels> Netfront<G, E> {
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
        self.rx.bufs.ready.len()
    }

    /// Transmit requests the backend has not answered.
    pub fn tx_in_flight(&self) -> usize {
        self.tx.in_flight()
    }

    /// Buffers held back because the backend still maps their grant.
    pub fn quarantined(&self) -> usize {
        self.tx.bufs.quarantine.len() + self.rx.bufs.quarantine.len()
    }

    /// The offloads in use, each way.
    pub fn negotiated(&self) -> Negotiated {
        self.negotiated
    }

    /// The largest frame [`send`](Self::send) takes: 1514 bytes, or a
    /// 64 KiB TCP packet for the backend to cut (GSO).
    pub fn max_tx_frame(&self) -> usize {
        self.tx.max_frame()
    }

    /// Whether a frame can be queued now without reclaiming.
    pub fn can_transmit(&self) -> bool {
        self.link.up && self.tx.has_room()
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

    /// Where the transmit ring stands, for a [`TxWatchdog`](crate::TxWatchdog).
    pub fn tx_progress(&self) -> crate::TxProgress {
        let front = &self.tx.ring.front;
        // The backend writes req_cons + 1 there when it finds the ring
        // empty: ours + 1 once it has taken every request we sent.
        let taken =
            self.tx.ring.page.as_ref().is_some_and(|p| p.read_u32(crate::ring::REQ_EVENT) == front.req_prod_pvt.wrapping_add(1));
        crate::TxProgress { outstanding: front.outstanding(), answered: front.rsp_cons, taken }
    }

    /// Processes tx completions and rx responses, retries quarantined
    /// grants and refills the rx ring. Safe to call at any time.
    pub fn poll(&mut self) {
        self.tx.reclaim(&mut self.link, &mut self.counters);
        self.rx.process(&mut self.link, &mut self.counters);
        // Failing to grant just leaves fewer buffers posted until later.
        let _ = self.rx.refill(&mut self.link, &mut self.counters);
    }

    /// Queues `frame` (14..=1514 bytes, checksums computed) for
    /// transmission. This inherent method shadows
    /// [`smoltcp::phy::Device::transmit`] in method-call syntax; smoltcp
    /// itself calls the trait method.
    pub fn transmit(&mut self, frame: &[u8]) -> Result<(), TxError> {
        self.send(frame, TxMeta::default())
    }

    /// Queues `frame` with the offload work `meta` asks for.
    pub fn send(&mut self, frame: &[u8], meta: TxMeta) -> Result<(), TxError> {
        self.transmit_with_meta(frame.len(), meta, |buf| buf.copy_from_slice(frame))
    }

    /// Queues a frame of `len` bytes built by `fill` (checksums computed).
    pub fn transmit_with<T>(&mut self, len: usize, fill: impl FnOnce(&mut [u8]) -> T) -> Result<T, TxError> {
        self.transmit_with_meta(len, TxMeta::default(), fill)
    }

    /// Queues a frame of `len` bytes built by `fill`, with `meta`.
    pub fn transmit_with_meta<T>(&mut self, len: usize, meta: TxMeta, fill: impl FnOnce(&mut [u8]) -> T) -> Result<T, TxError> {
        self.tx.begin(&mut self.link, &mut self.counters, len)?;
        let out = fill(&mut self.tx.scratch);
        self.tx.finish(&mut self.link, &mut self.counters, meta)?;
        Ok(out)
    }

    /// What comes with the next received frame, if one is ready.
    pub fn next_rx_meta(&mut self) -> Option<RxMeta> {
        if self.rx_queued() == 0 {
            self.poll();
        }
        self.rx.next_meta()
    }

    /// Copies the next received frame into `out` (as received: a
    /// `csum_blank` frame's checksum is not completed).
    pub fn receive_into(&mut self, out: &mut Vec<u8>) -> Option<RxMeta> {
        if self.rx_queued() == 0 {
            self.poll();
        }
        self.rx.take_into(out)
    }

    /// Hands the next received frame (as received) and what came with it
    /// to `f`. (Named apart from [`smoltcp::phy::Device::receive`].)
    pub fn receive_with<T>(&mut self, f: impl FnOnce(&[u8], RxMeta) -> T) -> Option<T> {
        if self.rx_queued() == 0 {
            self.poll();
        }
        match self.rx.take_frame() {
            (frame, Some(meta)) => Some(f(frame, meta)),
            (_, None) => None,
        }
    }

    /// The next received frame, copied out.
    pub fn poll_rx(&mut self) -> Option<Vec<u8>> {
        self.receive_with(|f, _| f.to_vec())
    }
}
