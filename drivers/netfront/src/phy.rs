//! The device as smoltcp sees it: receive and transmit tokens.

use alloc::vec;

use xen_proto::iface::{EventChannels, GrantTable, SharedPage};

use crate::counters::Counters;
use crate::device::Netfront;
use crate::error::TxError;
use crate::pool::Link;
use crate::rx::Rx;
use crate::tx::Tx;
use crate::wire;

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
        match self.tx.begin(self.link, self.counters, len) {
            Ok(id) => {
                let r = f(&mut self.tx.scratch);
                if self.tx.finish(self.link, self.counters, id).is_err() {
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
        if self.rx_queued() == 0 {
            self.poll();
        }
        if self.rx_queued() == 0 {
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
            self.tx.reclaim(&mut self.link, &mut self.counters);
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
