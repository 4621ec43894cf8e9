//! The transmit side: one buffer page per request, granted read-only to
//! the backend while the request is in flight and revoked when it is
//! answered.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use smoltcp::wire::IpProtocol;
use xen_proto::iface::{EventChannels, GrantTable, SharedPage, PAGE_SIZE};

use crate::counters::Counters;
use crate::error::TxError;
use crate::features::Offloads;
use crate::offload;
use crate::pool::{Link, Pool, RingPage};
use crate::ring::{entry_offset, TX_ENTRY_SIZE, TX_RING_SIZE};
use crate::wire::{self, ExtraInfo, TxRequest, TxResponse, TxStatus};

pub(crate) struct Tx<P> {
    pub(crate) ring: RingPage<P>,
    pub(crate) bufs: TxBuffers<P>,
    /// Where the stack builds a frame before it is copied to its pages.
    pub(crate) scratch: Vec<u8>,
    /// What we may send.
    pub(crate) offloads: Offloads,
}

/// What to do with an outgoing frame besides carrying it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxMeta {
    /// Its TCP/UDP checksum is not computed: netfront leaves it to the
    /// backend (seeding the field, computing the IPv4 header checksum), or
    /// computes it when checksum offload was not negotiated.
    pub csum: bool,
    /// Have the backend cut it into TCP segments of this many payload
    /// bytes (GSO; implies `csum`). Without GSO negotiated a frame larger
    /// than 1514 bytes is refused.
    pub gso_size: Option<u16>,
}

/// The buffer pages and what each is doing.
pub(crate) struct TxBuffers<P> {
    pub(crate) pool: Pool<P>,
    /// Frame length per buffer id while its request is in flight.
    pub(crate) in_flight: Vec<Option<u16>>,
    /// Free buffer ids, oldest first: an answered id is reused as late
    /// as possible, so a duplicate response is caught as such.
    pub(crate) free: VecDeque<u16>,
    /// Answered buffers whose grant the backend still maps.
    pub(crate) quarantine: Vec<u16>,
}

impl<P: SharedPage> Tx<P> {
    pub(crate) fn new() -> Self {
        Tx {
            ring: RingPage::new(TX_RING_SIZE),
            bufs: TxBuffers { pool: Pool::new(), in_flight: Vec::new(), free: VecDeque::new(), quarantine: Vec::new() },
            scratch: Vec::new(),
            offloads: Offloads::NONE,
        }
    }

    /// Allocates `n` buffer pages, all free.
    pub(crate) fn setup<G: GrantTable<Page = P>>(&mut self, gnt: &mut G, n: u16) -> Result<(), xen_proto::iface::XenError> {
        let b = &mut self.bufs;
        b.pool.fill(gnt, n)?;
        b.in_flight.resize(usize::from(n), None);
        b.free = (0..n).collect();
        Ok(())
    }

    /// Forgets every request (after the pool was released).
    pub(crate) fn clear(&mut self) {
        let b = &mut self.bufs;
        b.in_flight.iter_mut().for_each(|s| *s = None);
        b.free.clear();
        b.quarantine.clear();
    }

    /// Requests not answered yet.
    pub(crate) fn in_flight(&self) -> usize {
        self.bufs.in_flight.iter().filter(|s| s.is_some()).count()
    }

    /// Room for one more frame of the largest size without reclaiming.
    pub(crate) fn has_room(&self) -> bool {
        self.has_room_for(self.max_frame())
    }

    /// Takes back answered buffers (and quarantined ones the backend let
    /// go of).
    pub(crate) fn reclaim<G: GrantTable<Page = P>, E: EventChannels>(&mut self, link: &mut Link<G, E>, c: &mut Counters) {
        let Tx { ring, bufs, .. } = self;
        if !bufs.quarantine.is_empty() {
            let TxBuffers { pool, free, quarantine, .. } = bufs;
            pool.retry_quarantine(&mut link.gnt, c, quarantine, |b| free.push_back(b));
        }
        if !link.up {
            return;
        }
        let gnt = &mut link.gnt;
        let drained = ring.drain(|_, e: &[u8; TX_ENTRY_SIZE]| {
            let r = TxResponse::new_unchecked(&e[..]);
            // An extra-info slot's answer; its id is not one of ours.
            if r.status() == wire::NETIF_RSP_NULL {
                c.tx_null_responses += 1;
                return;
            }
            bufs.complete(gnt, c, r.id(), r.status());
        });
        if drained.is_err() {
            c.bad_responses.ring_overflow += 1;
            link.up = false;
        }
    }

    /// Readies `scratch` for a frame of `len` bytes, making sure there
    /// are buffers and ring slots for all of it.
    pub(crate) fn begin<G: GrantTable<Page = P>, E: EventChannels>(
        &mut self,
        link: &mut Link<G, E>,
        c: &mut Counters,
        len: usize,
    ) -> Result<(), TxError> {
        if !link.up {
            return Err(TxError::Down);
        }
        if !(wire::MIN_FRAME..=self.max_frame()).contains(&len) {
            c.tx_drops.bad_length += 1;
            return Err(TxError::BadLength(len));
        }
        if !self.has_room_for(len) {
            self.reclaim(link, c);
            if !link.up {
                return Err(TxError::Down);
            }
            if !self.has_room_for(len) {
                return Err(TxError::Full);
            }
        }
        self.scratch.clear();
        self.scratch.resize(len, 0);
        Ok(())
    }

    /// The largest frame we may send.
    pub(crate) fn max_frame(&self) -> usize {
        if self.offloads.sg {
            wire::MAX_PACKET
        } else {
            wire::MAX_FRAME
        }
    }

    /// Buffers and ring slots for a frame of `len` bytes, and an
    /// extra-info slot.
    fn has_room_for(&self, len: usize) -> bool {
        let slots = len.div_ceil(PAGE_SIZE);
        self.bufs.free.len() >= slots && self.ring.front.free_requests() as usize > slots
    }

    /// Sends the frame built in `scratch`: checksums as `meta` asks, one
    /// page per 4 KiB of it, each granted read-only, the requests (and a
    /// GSO extra) published together.
    pub(crate) fn finish<G: GrantTable<Page = P>, E: EventChannels>(
        &mut self,
        link: &mut Link<G, E>,
        c: &mut Counters,
        meta: TxMeta,
    ) -> Result<(), TxError> {
        let Some(ring_page) = self.ring.page.as_ref() else {
            return Err(TxError::Down);
        };
        let frame = &mut self.scratch[..];
        let len = frame.len();
        let mut flags = 0;
        if meta.csum || meta.gso_size.is_some() {
            if !self.offloads.csum {
                offload::fill(frame);
            } else if offload::seed(frame) {
                flags |= wire::NETTXF_CSUM_BLANK | wire::NETTXF_DATA_VALIDATED;
            }
        }
        let gso = match meta.gso_size {
            Some(mss) if flags != 0 && self.offloads.gso && segments(frame, mss) => Some(mss),
            _ => None,
        };
        if gso.is_none() && len > wire::MAX_FRAME {
            // Larger than one frame and not something the backend may cut.
            c.tx_drops.bad_length += 1;
            return Err(TxError::BadLength(len));
        }
        let frame = &self.scratch[..];
        let b = &mut self.bufs;
        // Grant every page first: nothing is published unless all are.
        let mut ids = [0u16; wire::MAX_SLOTS];
        let chunks = frame.chunks(PAGE_SIZE);
        let slots = chunks.len();
        for (i, chunk) in chunks.enumerate() {
            let granted = b.free.pop_front().ok_or(TxError::Full).and_then(|id| {
                let page = b.pool.page(id).ok_or(TxError::Down)?;
                page.write_bytes(0, chunk);
                match link.gnt.grant(page, link.backend_id, true) {
                    Ok(gref) => {
                        b.pool.grants[usize::from(id)] = Some(gref);
                        Ok(id)
                    }
                    Err(e) => {
                        b.free.push_front(id);
                        Err(TxError::Xen(e))
                    }
                }
            });
            match granted {
                Ok(id) => ids[i] = id,
                Err(e) => {
                    for &id in ids[..i].iter().rev() {
                        b.pool.revoke(&mut link.gnt, id, c);
                        b.free.push_front(id);
                    }
                    return Err(e);
                }
            }
        }
        let front = &mut self.ring.front;
        let mut put = |entry: &[u8; TX_ENTRY_SIZE]| {
            let prod = front.req_prod_pvt;
            ring_page.write_bytes(entry_offset(prod, TX_RING_SIZE, TX_ENTRY_SIZE), entry);
            front.req_prod_pvt = prod.wrapping_add(1);
        };
        for (i, chunk) in frame.chunks(PAGE_SIZE).enumerate() {
            let id = ids[i];
            let more = if i + 1 < slots { wire::NETTXF_MORE_DATA } else { 0 };
            let (f, size) = match i {
                0 => (flags | more | if gso.is_some() { wire::NETTXF_EXTRA_INFO } else { 0 }, len),
                _ => (more, chunk.len()),
            };
            let gref = b.pool.grants[usize::from(id)].unwrap_or(0);
            b.in_flight[usize::from(id)] = Some(chunk.len() as u16);
            let mut e = [0u8; TX_ENTRY_SIZE];
            TxRequest::new_unchecked(&mut e[..]).fill(gref, 0, f, id, size as u16);
            put(&e);
            if let (0, Some(mss)) = (i, gso) {
                let mut x = [0u8; TX_ENTRY_SIZE];
                ExtraInfo::new_unchecked(&mut x[..]).fill_gso_tcpv4(mss);
                put(&x);
            }
        }
        c.tx_frames += 1;
        c.tx_bytes += len as u64;
        c.tx_slots += slots as u64;
        c.tx_csum_offloaded += u64::from(flags != 0);
        c.tx_gso_packets += u64::from(gso.is_some());
        if front.push_requests(ring_page) {
            link.notify(c);
        }
        Ok(())
    }
}

/// Whether `frame` is a TCP packet with more payload than one segment of
/// `mss` bytes: only then may it carry a GSO extra (dom0 drops a GSO
/// packet with nothing to cut when it must segment it).
fn segments(frame: &[u8], mss: u16) -> bool {
    offload::l4(frame).is_some_and(|l| l.protocol == IpProtocol::Tcp && mss > 0 && l.len - l.header > usize::from(mss))
}

impl<P: SharedPage> TxBuffers<P> {
    /// The backend answered request `id` with `status`.
    pub(crate) fn complete<G: GrantTable<Page = P>>(&mut self, gnt: &mut G, c: &mut Counters, id: u16, status: i16) {
        let Some(slot) = self.in_flight.get_mut(usize::from(id)) else {
            c.bad_responses.tx_id_out_of_range += 1;
            return;
        };
        if slot.take().is_none() {
            c.bad_responses.tx_not_outstanding += 1;
            return;
        }
        if self.pool.revoke(gnt, id, c) {
            self.free.push_back(id);
        } else {
            self.quarantine.push(id);
        }
        match TxStatus::from_raw(status) {
            TxStatus::Okay => {}
            TxStatus::Error => c.tx_drops.backend_error += 1,
            TxStatus::Dropped => c.tx_drops.backend_dropped += 1,
            TxStatus::Invalid(_) => c.bad_responses.tx_bad_status += 1,
        }
    }
}
