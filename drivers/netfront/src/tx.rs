//! The transmit side: one buffer page per request, granted read-only to
//! the backend while the request is in flight and revoked when it is
//! answered.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use xen_proto::iface::{EventChannels, GrantTable, SharedPage};

use crate::counters::Counters;
use crate::error::TxError;
use crate::pool::{Link, Pool, RingPage};
use crate::ring::{entry_offset, TX_ENTRY_SIZE, TX_RING_SIZE};
use crate::wire::{self, TxRequest, TxResponse, TxStatus};

pub(crate) struct Tx<P> {
    pub(crate) ring: RingPage<P>,
    pub(crate) bufs: TxBuffers<P>,
    /// Where the stack builds a frame before it is copied to its page.
    pub(crate) scratch: Vec<u8>,
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

    /// Room for one more frame without reclaiming.
    pub(crate) fn has_room(&self) -> bool {
        !self.bufs.free.is_empty() && !self.ring.front.is_full()
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
            bufs.complete(gnt, c, r.id(), r.status());
        });
        if drained.is_err() {
            c.bad_responses.ring_overflow += 1;
            link.up = false;
        }
    }

    /// Picks a free buffer for a frame of `len` bytes and readies
    /// `scratch` for it.
    pub(crate) fn begin<G: GrantTable<Page = P>, E: EventChannels>(
        &mut self,
        link: &mut Link<G, E>,
        c: &mut Counters,
        len: usize,
    ) -> Result<u16, TxError> {
        if !link.up {
            return Err(TxError::Down);
        }
        if !(wire::MIN_FRAME..=wire::MAX_FRAME).contains(&len) {
            c.tx_drops.bad_length += 1;
            return Err(TxError::BadLength(len));
        }
        if !self.has_room() {
            self.reclaim(link, c);
            if !link.up {
                return Err(TxError::Down);
            }
        }
        if self.ring.front.is_full() {
            return Err(TxError::Full);
        }
        let id = self.bufs.free.pop_front().ok_or(TxError::Full)?;
        self.scratch.clear();
        self.scratch.resize(len, 0);
        Ok(id)
    }

    /// Copies the frame built in `scratch` into buffer `id`, grants it
    /// read-only and pushes the request.
    pub(crate) fn finish<G: GrantTable<Page = P>, E: EventChannels>(
        &mut self,
        link: &mut Link<G, E>,
        c: &mut Counters,
        id: u16,
    ) -> Result<(), TxError> {
        let (Some(ring_page), Some(page)) = (self.ring.page.as_ref(), self.bufs.pool.page(id)) else {
            self.bufs.free.push_back(id);
            return Err(TxError::Down);
        };
        let len = self.scratch.len();
        page.write_bytes(0, &self.scratch);
        let gref = match link.gnt.grant(page, link.backend_id, true) {
            Ok(g) => g,
            Err(e) => {
                self.bufs.free.push_back(id);
                return Err(TxError::Xen(e));
            }
        };
        self.bufs.pool.grants[usize::from(id)] = Some(gref);
        self.bufs.in_flight[usize::from(id)] = Some(len as u16);
        let mut e = [0u8; TX_ENTRY_SIZE];
        TxRequest::new_unchecked(&mut e[..]).fill(gref, 0, 0, id, len as u16);
        let front = &mut self.ring.front;
        let prod = front.req_prod_pvt;
        ring_page.write_bytes(entry_offset(prod, TX_RING_SIZE, TX_ENTRY_SIZE), &e);
        front.req_prod_pvt = prod.wrapping_add(1);
        c.tx_frames += 1;
        c.tx_bytes += len as u64;
        if front.push_requests(ring_page) {
            link.notify(c);
        }
        Ok(())
    }
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
