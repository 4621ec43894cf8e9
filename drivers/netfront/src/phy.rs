//! The device as smoltcp sees it: receive and transmit tokens.
//!
//! With checksum offload negotiated, smoltcp computes no TCP/UDP checksum
//! on the way out (netfront seeds the field and the backend completes it),
//! and with GSO it builds TCP packets of up to 64 KiB for the backend to
//! cut. On the way in smoltcp verifies what dom0 did not vouch for; a
//! frame whose checksum dom0 left blank is completed first.

use alloc::vec;
use core::num::NonZeroUsize;

use smoltcp::phy::{Checksum, ChecksumCapabilities, DeviceCapabilities, Medium, PacketMeta};
use xen_proto::iface::{EventChannels, GrantTable, SharedPage};

use crate::counters::Counters;
use crate::device::Netfront;
use crate::error::TxError;
use crate::offload;
use crate::pool::Link;
use crate::rx::{Rx, RxChecksum};
use crate::tx::{Tx, TxMeta};
use crate::wire;

/// smoltcp receive token: the next received frame.
pub struct NetRxToken<'a, P: SharedPage> {
    rx: &'a mut Rx<P>,
}

/// smoltcp transmit token: room for a frame (or, if none is left when it
/// is consumed, a counted drop).
pub struct NetTxToken<'a, G: GrantTable, E: EventChannels> {
    tx: &'a mut Tx<G::Page>,
    link: &'a mut Link<G, E>,
    counters: &'a mut Counters,
    meta: TxMeta,
}

impl<P: SharedPage> smoltcp::phy::RxToken for NetRxToken<'_, P> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        let mut frame = vec::Vec::new();
        // Tokens exist only while a frame is ready.
        let meta = self.rx.take_into(&mut frame);
        if meta.is_some_and(|m| m.checksum == RxChecksum::Blank) {
            offload::complete(&mut frame);
        }
        f(&frame)
    }
}

impl<G: GrantTable, E: EventChannels> smoltcp::phy::TxToken for NetTxToken<'_, G, E> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        match self.tx.begin(self.link, self.counters, len) {
            Ok(()) => {
                let r = f(&mut self.tx.scratch);
                if self.tx.finish(self.link, self.counters, self.meta).is_err() {
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

    fn set_meta(&mut self, meta: PacketMeta) {
        self.meta.gso_size = meta.segmentation_offload_size.map(|s| s.get());
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

    fn receive(&mut self, _now: smoltcp::time::Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        if self.rx_queued() == 0 {
            self.poll();
        }
        if self.rx_queued() == 0 {
            return None;
        }
        let meta = TxMeta { csum: self.negotiated.tx.csum, gso_size: None };
        Some((
            NetRxToken { rx: &mut self.rx },
            NetTxToken { tx: &mut self.tx, link: &mut self.link, counters: &mut self.counters, meta },
        ))
    }

    fn transmit(&mut self, _now: smoltcp::time::Instant) -> Option<Self::TxToken<'_>> {
        if !self.can_transmit() {
            self.tx.reclaim(&mut self.link, &mut self.counters);
        }
        if !self.can_transmit() {
            return None;
        }
        let meta = TxMeta { csum: self.negotiated.tx.csum, gso_size: None };
        Some(NetTxToken { tx: &mut self.tx, link: &mut self.link, counters: &mut self.counters, meta })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = wire::MAX_FRAME;
        caps.max_burst_size = Some(usize::from(self.config.rx_buffers));
        let tx = self.negotiated.tx;
        let mut checksum = ChecksumCapabilities::default();
        if tx.csum {
            // Verified on the way in, left to the backend on the way out.
            checksum.tcp = Checksum::Rx;
            checksum.udp = Checksum::Rx;
        }
        caps.checksum = checksum;
        if tx.gso {
            caps.segmentation.tcpv4 = NonZeroUsize::new(wire::MAX_PACKET);
        }
        caps
    }
}
