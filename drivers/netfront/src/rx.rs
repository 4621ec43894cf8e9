//! The receive side: one page per posted request, granted read-write to
//! the backend while posted, revoked before its contents are read.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use xen_proto::iface::{EventChannels, GrantTable, SharedPage, XenError};

use crate::counters::Counters;
use crate::pool::{Link, Pool, RingPage};
use crate::ring::{entry_offset, RX_ENTRY_SIZE, RX_RING_SIZE};
use crate::wire::{self, RxReject, RxRequest, RxResponse};

/// A received frame waiting for the stack, in a buffer no longer granted.
#[derive(Clone, Copy)]
pub(crate) struct Ready {
    buf: u16,
    offset: usize,
    len: usize,
}

pub(crate) struct Rx<P> {
    pub(crate) ring: RingPage<P>,
    pub(crate) bufs: RxBuffers<P>,
    /// Where a frame is copied out of its page for the stack.
    scratch: Vec<u8>,
}

/// The buffer pages, what each is doing, and the state of the response
/// stream.
pub(crate) struct RxBuffers<P> {
    pub(crate) pool: Pool<P>,
    pub(crate) free: Vec<u16>,
    /// Buffer posted in each ring slot. As in Linux netfront the request
    /// id is the slot number, and netif.h requires the backend to answer
    /// in the slot of the request (extra-info slots carry no id at all):
    /// the slot says which buffer a response consumed, and an id that
    /// differs from the slot is a protocol violation.
    posted: Vec<Option<u16>>,
    pub(crate) ready: VecDeque<Ready>,
    pub(crate) quarantine: Vec<u16>,
    /// Dropping the remaining slots of a multi-slot packet.
    discarding: bool,
    /// The next slot is an extra-info slot.
    extra_next: bool,
}

impl<P: SharedPage> Rx<P> {
    pub(crate) fn new() -> Self {
        Rx {
            ring: RingPage::new(RX_RING_SIZE),
            bufs: RxBuffers {
                pool: Pool::new(),
                free: Vec::new(),
                posted: vec![None; RX_RING_SIZE as usize],
                ready: VecDeque::new(),
                quarantine: Vec::new(),
                discarding: false,
                extra_next: false,
            },
            scratch: Vec::new(),
        }
    }

    /// Allocates `n` buffer pages, all free (posted by `refill`).
    pub(crate) fn setup<G: GrantTable<Page = P>>(&mut self, gnt: &mut G, n: u16) -> Result<(), XenError> {
        self.bufs.pool.fill(gnt, n)?;
        self.bufs.free = (0..n).rev().collect();
        Ok(())
    }

    /// Forgets every posted buffer and ready frame (after the pool was
    /// released).
    pub(crate) fn clear(&mut self) {
        let b = &mut self.bufs;
        b.free.clear();
        b.posted.iter_mut().for_each(|s| *s = None);
        b.quarantine.clear();
        b.ready.clear();
    }

    /// Copies the next ready frame out of its (no longer granted) page
    /// and frees the buffer; empty if none is ready.
    pub(crate) fn take_frame(&mut self) -> &[u8] {
        self.scratch.clear();
        let b = &mut self.bufs;
        if let Some(r) = b.ready.pop_front() {
            self.scratch.resize(r.len, 0);
            if let Some(page) = b.pool.page(r.buf) {
                page.read_bytes(r.offset, &mut self.scratch);
            }
            b.free.push(r.buf);
        }
        &self.scratch
    }

    /// Reads the backend's responses into ready frames.
    pub(crate) fn process<G: GrantTable<Page = P>, E: EventChannels>(&mut self, link: &mut Link<G, E>, c: &mut Counters) {
        let Rx { ring, bufs, .. } = self;
        if !bufs.quarantine.is_empty() {
            let RxBuffers { pool, free, quarantine, .. } = bufs;
            pool.retry_quarantine(&mut link.gnt, c, quarantine, |b| free.push(b));
        }
        if !link.up {
            return;
        }
        let gnt = &mut link.gnt;
        let drained = ring.drain(|pos, e: &[u8; RX_ENTRY_SIZE]| bufs.handle_response(gnt, c, pos, e));
        if drained.is_err() {
            c.bad_responses.ring_overflow += 1;
            link.up = false;
        }
    }

    /// Posts every free buffer the ring has room for, granting each
    /// read-write, and kicks the backend if it asked.
    pub(crate) fn refill<G: GrantTable<Page = P>, E: EventChannels>(
        &mut self,
        link: &mut Link<G, E>,
        c: &mut Counters,
    ) -> Result<(), XenError> {
        if !link.up {
            return Ok(());
        }
        let Some(ring_page) = self.ring.page.as_ref() else {
            return Ok(());
        };
        let front = &mut self.ring.front;
        let b = &mut self.bufs;
        let mut pushed = false;
        let mut result = Ok(());
        while !front.is_full() {
            let prod = front.req_prod_pvt;
            let slot = (prod & (RX_RING_SIZE - 1)) as usize;
            // The slot's previous request was answered (the ring is not
            // full), so it holds no buffer.
            let (Some(&buf), false) = (b.free.last(), b.posted[slot].is_some()) else {
                break;
            };
            let Some(page) = b.pool.page(buf) else {
                break;
            };
            let gref = match link.gnt.grant(page, link.backend_id, false) {
                Ok(g) => g,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            b.free.pop();
            b.pool.grants[usize::from(buf)] = Some(gref);
            b.posted[slot] = Some(buf);
            let mut e = [0u8; RX_ENTRY_SIZE];
            RxRequest::new_unchecked(&mut e[..]).fill(slot as u16, gref);
            ring_page.write_bytes(entry_offset(prod, RX_RING_SIZE, RX_ENTRY_SIZE), &e);
            front.req_prod_pvt = prod.wrapping_add(1);
            pushed = true;
        }
        if pushed && front.push_requests(ring_page) {
            link.notify(c);
        }
        result
    }
}

impl<P: SharedPage> RxBuffers<P> {
    /// Takes back the buffer posted in ring slot `slot`, revoking its
    /// grant. None if nothing is posted there or the backend still maps
    /// it (then it is quarantined).
    fn take_posted<G: GrantTable<Page = P>>(&mut self, gnt: &mut G, c: &mut Counters, slot: usize) -> Option<u16> {
        let buf = self.posted.get_mut(slot)?.take()?;
        if self.pool.revoke(gnt, buf, c) {
            Some(buf)
        } else {
            c.rx_drops.busy_grant += 1;
            self.quarantine.push(buf);
            None
        }
    }

    fn handle_response<G: GrantTable<Page = P>>(&mut self, gnt: &mut G, c: &mut Counters, pos: u32, e: &[u8; RX_ENTRY_SIZE]) {
        let r = RxResponse::new_unchecked(&e[..]);
        let slot = (pos & (RX_RING_SIZE - 1)) as usize;
        // Whatever the response says, it used up the request of its slot.
        let buf = self.take_posted(gnt, c, slot);
        if self.extra_next {
            // An extra-info slot (no id).
            self.extra_next = r.extra_flags() & wire::XEN_NETIF_EXTRA_FLAG_MORE != 0;
            c.rx_drops.continuation += 1;
            self.free.extend(buf);
            return;
        }
        let (id, offset, flags, status) = (r.id(), r.offset(), r.flags(), r.status());
        if flags & wire::NETRXF_EXTRA_INFO != 0 {
            self.extra_next = true;
        }
        let continuation = self.discarding;
        self.discarding = flags & wire::NETRXF_MORE_DATA != 0;
        if usize::from(id) != slot {
            if usize::from(id) >= self.posted.len() {
                c.bad_responses.rx_id_out_of_range += 1;
            } else {
                c.bad_responses.rx_id_mismatch += 1;
            }
            self.free.extend(buf);
            return;
        }
        let Some(buf) = buf else {
            return;
        };
        if continuation {
            c.rx_drops.continuation += 1;
            self.free.push(buf);
            return;
        }
        match wire::check_rx(offset, flags, status) {
            Ok((offset, len)) => {
                c.rx_frames += 1;
                c.rx_bytes += len as u64;
                self.ready.push_back(Ready { buf, offset, len });
            }
            Err(why) => {
                let d = &mut c.rx_drops;
                match why {
                    RxReject::Status(_) => d.error_status += 1,
                    RxReject::OutsidePage => d.outside_page += 1,
                    RxReject::Oversize => d.oversize += 1,
                    RxReject::Runt => d.runt += 1,
                    RxReject::UnsupportedFlags(_) => d.unsupported_flags += 1,
                }
                self.free.push(buf);
            }
        }
    }
}
