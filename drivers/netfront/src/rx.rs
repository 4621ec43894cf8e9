//! The receive side: one page per posted request, granted read-write to
//! the backend while posted, revoked before its contents are read.
//!
//! A packet is a chain of responses (netif.h, Linux netback's `rx.c`): a
//! first data slot whose flags say what follows, extra-info slots right
//! after it (`NETRXF_extra_info`, chained by `XEN_NETIF_EXTRA_FLAG_MORE`),
//! then more data slots while `NETRXF_more_data` is set. Netback publishes
//! whole chains only, so a chain still open when the published responses
//! run out is a protocol violation, dropped like every malformed chain.
//! A dropped chain is still followed to its end, so that the next packet
//! starts where it should.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use xen_proto::iface::{EventChannels, GrantTable, SharedPage, XenError, PAGE_SIZE};

use crate::counters::Counters;
use crate::features::Offloads;
use crate::offload;
use crate::pool::{Link, Pool, RingPage};
use crate::ring::{entry_offset, RX_ENTRY_SIZE, RX_RING_SIZE};
use crate::wire::{self, ExtraInfo, RxRequest, RxResponse, MAX_EXTRAS, MAX_PACKET, MAX_SLOTS, MIN_FRAME};

/// What the backend said about a received frame's TCP/UDP checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxChecksum {
    /// Nothing: check it.
    Unverified,
    /// `NETRXF_data_validated`: dom0 checked it (or made the frame itself).
    Validated,
    /// `NETRXF_csum_blank`: the field holds only the pseudo-header sum;
    /// the data never left the host.
    Blank,
}

/// What comes with a received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxMeta {
    pub checksum: RxChecksum,
    /// The segment size of a GSO packet (the frame is then one large TCP
    /// segment).
    pub gso_size: Option<u16>,
}

impl RxMeta {
    /// Whether dom0 vouches for the checksums: nothing to verify.
    pub fn vouched(&self) -> bool {
        self.checksum != RxChecksum::Unverified
    }
}

/// One data slot of a received packet.
#[derive(Clone, Copy)]
struct Slot {
    buf: u16,
    offset: u16,
    len: u16,
}

/// A packet ready for the stack: the next `slots` entries of
/// `RxBuffers::slots`.
#[derive(Clone, Copy)]
pub(crate) struct Ready {
    slots: u8,
    len: u32,
    meta: RxMeta,
}

/// Why a chain is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Drop {
    Status,
    OutsidePage,
    TooLong,
    Runt,
    UnsupportedFlags,
    BadExtra,
    BadGso,
    BadCsumBlank,
    Truncated,
    /// The response's id is not its slot's, or no buffer was posted there
    /// (already counted where found).
    Unusable,
}

/// The packet being read from the ring.
struct Chain {
    /// Data slots so far (pushed to `slots` unless dropping).
    slots: usize,
    len: usize,
    /// Flags of the first slot.
    flags: u16,
    /// The next response is an extra-info slot.
    extra_next: bool,
    extras: usize,
    /// More data slots follow (once the extras are read).
    more: bool,
    gso_size: Option<u16>,
    drop: Option<Drop>,
}

pub(crate) struct Rx<P> {
    pub(crate) ring: RingPage<P>,
    pub(crate) bufs: RxBuffers<P>,
    /// Where a packet is copied out of its pages for the stack.
    scratch: Vec<u8>,
}

/// The buffer pages, what each is doing, and the packets read so far.
pub(crate) struct RxBuffers<P> {
    pub(crate) pool: Pool<P>,
    pub(crate) free: Vec<u16>,
    /// Buffer posted in each ring slot. As in Linux netfront the request
    /// id is the slot number, and netif.h requires the backend to answer
    /// in the slot of the request (extra-info slots carry no id at all):
    /// the slot says which buffer a response consumed, and an id that
    /// differs from the slot is a protocol violation.
    posted: Vec<Option<u16>>,
    /// Data slots of ready packets (and of the chain being read), in order.
    slots: VecDeque<Slot>,
    pub(crate) ready: VecDeque<Ready>,
    pub(crate) quarantine: Vec<u16>,
    chain: Option<Chain>,
    /// What we accepted for the receive ring.
    pub(crate) offloads: Offloads,
}

impl<P: SharedPage> Rx<P> {
    pub(crate) fn new() -> Self {
        Rx {
            ring: RingPage::new(RX_RING_SIZE),
            bufs: RxBuffers {
                pool: Pool::new(),
                free: Vec::new(),
                posted: vec![None; RX_RING_SIZE as usize],
                slots: VecDeque::new(),
                ready: VecDeque::new(),
                quarantine: Vec::new(),
                chain: None,
                offloads: Offloads::NONE,
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

    /// Forgets every posted buffer and ready packet (after the pool was
    /// released).
    pub(crate) fn clear(&mut self) {
        let b = &mut self.bufs;
        b.free.clear();
        b.posted.iter_mut().for_each(|s| *s = None);
        b.quarantine.clear();
        b.slots.clear();
        b.ready.clear();
        b.chain = None;
    }

    /// What comes with the next ready packet.
    pub(crate) fn next_meta(&self) -> Option<RxMeta> {
        self.bufs.ready.front().map(|r| r.meta)
    }

    /// Copies the next ready packet out of its (no longer granted) pages
    /// into `out` and frees its buffers.
    pub(crate) fn take_into(&mut self, out: &mut Vec<u8>) -> Option<RxMeta> {
        let b = &mut self.bufs;
        let r = b.ready.pop_front()?;
        out.clear();
        out.resize(r.len as usize, 0);
        let mut at = 0;
        for _ in 0..r.slots {
            let Some(s) = b.slots.pop_front() else { break };
            let end = at + usize::from(s.len);
            if let (Some(page), Some(dst)) = (b.pool.page(s.buf), out.get_mut(at..end)) {
                page.read_bytes(usize::from(s.offset), dst);
            }
            at = end;
            b.free.push(s.buf);
        }
        Some(r.meta)
    }

    /// The next ready packet, copied out into `scratch`; empty if none.
    pub(crate) fn take_frame(&mut self) -> (&[u8], Option<RxMeta>) {
        let mut scratch = core::mem::take(&mut self.scratch);
        let meta = self.take_into(&mut scratch);
        if meta.is_none() {
            scratch.clear();
        }
        self.scratch = scratch;
        (&self.scratch, meta)
    }

    /// Reads the backend's responses into ready packets.
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
        if let Some(chain) = &mut bufs.chain {
            // Netback publishes whole chains: this one will not go on.
            chain.drop.get_or_insert(Drop::Truncated);
            chain.extra_next = false;
            chain.more = false;
            bufs.finish(c);
        }
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
        let slot = (pos & (RX_RING_SIZE - 1)) as usize;
        // Whatever the response says, it used up the request of its slot.
        let buf = self.take_posted(gnt, c, slot);
        match &self.chain {
            Some(chain) if chain.extra_next => {
                c.rx_extra_slots += 1;
                self.free.extend(buf);
                self.extra(ExtraInfo::new_unchecked(&e[..]));
            }
            _ => self.data(c, slot, buf, RxResponse::new_unchecked(&e[..])),
        }
        if self.chain.as_ref().is_some_and(|ch| !ch.extra_next && !ch.more) {
            self.finish(c);
        }
    }

    /// A data slot: the first of a packet, or a later one.
    fn data(&mut self, c: &mut Counters, slot: usize, buf: Option<u16>, r: RxResponse<&[u8]>) {
        let (id, offset, flags, status) = (r.id(), r.offset(), r.flags(), r.status());
        let rx = self.offloads;
        let chain = self.chain.get_or_insert_with(|| {
            // Extras of any kind come only with GSO, the one we ask for.
            let unsupported = (flags & wire::NETRXF_MORE_DATA != 0 && !rx.sg)
                || (flags & wire::NETRXF_EXTRA_INFO != 0 && !rx.gso)
                || (flags & wire::NETRXF_CSUM_BLANK != 0 && !rx.csum)
                || flags & wire::NETRXF_GSO_PREFIX != 0;
            Chain {
                slots: 0,
                len: 0,
                flags,
                extra_next: flags & wire::NETRXF_EXTRA_INFO != 0,
                extras: 0,
                more: false,
                gso_size: None,
                drop: unsupported.then_some(Drop::UnsupportedFlags),
            }
        });
        chain.more = flags & wire::NETRXF_MORE_DATA != 0;
        let problem = if usize::from(id) != slot {
            if usize::from(id) >= self.posted.len() {
                c.bad_responses.rx_id_out_of_range += 1;
            } else {
                c.bad_responses.rx_id_mismatch += 1;
            }
            Some(Drop::Unusable)
        } else if status < 0 {
            Some(Drop::Status)
        } else if usize::from(offset) + status as usize > PAGE_SIZE {
            Some(Drop::OutsidePage)
        } else if status == 0 {
            Some(Drop::Runt)
        } else if chain.slots == MAX_SLOTS || chain.len + status as usize > if rx.sg { MAX_PACKET } else { wire::MAX_FRAME } {
            Some(Drop::TooLong)
        } else if buf.is_none() {
            Some(Drop::Unusable)
        } else {
            None
        };
        if chain.drop.is_none() {
            chain.drop = problem;
        }
        let Some(buf) = buf else { return };
        if chain.drop.is_some() {
            self.free.push(buf);
            return;
        }
        chain.slots += 1;
        chain.len += status as usize;
        self.slots.push_back(Slot { buf, offset, len: status as u16 });
    }

    /// An extra-info slot; only GSO (TCPv4) is one we asked for.
    fn extra(&mut self, x: ExtraInfo<&[u8]>) {
        let gso_ok = self.offloads.gso;
        let Some(chain) = self.chain.as_mut() else { return };
        chain.extras += 1;
        chain.extra_next = x.flags() & wire::XEN_NETIF_EXTRA_FLAG_MORE != 0;
        let problem = if chain.extras > MAX_EXTRAS || x.kind() != wire::XEN_NETIF_EXTRA_TYPE_GSO || chain.gso_size.is_some() {
            Some(Drop::BadExtra)
        } else if !gso_ok || x.gso_type() != wire::XEN_NETIF_GSO_TYPE_TCPV4 || x.gso_size() == 0 {
            Some(Drop::BadGso)
        } else {
            chain.gso_size = Some(x.gso_size());
            None
        };
        if chain.drop.is_none() {
            chain.drop = problem;
        }
    }

    /// The chain has ended: a ready packet, or a counted drop.
    fn finish(&mut self, c: &mut Counters) {
        let Some(chain) = self.chain.take() else { return };
        let why = chain.drop.or_else(|| self.check(&chain).err());
        let Some(why) = why else {
            let checksum = if chain.flags & wire::NETRXF_CSUM_BLANK != 0 {
                RxChecksum::Blank
            } else if chain.flags & wire::NETRXF_DATA_VALIDATED != 0 {
                RxChecksum::Validated
            } else {
                RxChecksum::Unverified
            };
            c.rx_frames += 1;
            c.rx_bytes += chain.len as u64;
            c.rx_gso_packets += u64::from(chain.gso_size.is_some());
            c.rx_multi_slot += u64::from(chain.slots > 1);
            self.ready.push_back(Ready {
                slots: chain.slots as u8,
                len: chain.len as u32,
                meta: RxMeta { checksum, gso_size: chain.gso_size },
            });
            return;
        };
        self.chain = Some(chain);
        self.drop_chain();
        let d = &mut c.rx_drops;
        match why {
            Drop::Status => d.error_status += 1,
            Drop::OutsidePage => d.outside_page += 1,
            Drop::TooLong => d.oversize += 1,
            Drop::Runt => d.runt += 1,
            Drop::UnsupportedFlags => d.unsupported_flags += 1,
            Drop::BadExtra => d.bad_extra += 1,
            Drop::BadGso => d.bad_gso += 1,
            Drop::BadCsumBlank => d.bad_csum_blank += 1,
            Drop::Truncated => d.truncated_chain += 1,
            Drop::Unusable => {}
        }
    }

    /// Whether a complete chain makes a packet we can hand up.
    fn check(&self, chain: &Chain) -> Result<(), Drop> {
        if chain.len < MIN_FRAME {
            return Err(Drop::Runt);
        }
        let blank = chain.flags & wire::NETRXF_CSUM_BLANK != 0;
        if !blank && chain.gso_size.is_none() {
            return Ok(());
        }
        // The headers, which netback puts in the first slot (4 KiB).
        let mut head = [0u8; offload::HEADERS_MAX];
        let first = self.slots.len() - chain.slots;
        let s = self.slots[first];
        let n = usize::from(s.len).min(head.len());
        if let Some(page) = self.pool.page(s.buf) {
            page.read_bytes(usize::from(s.offset), &mut head[..n]);
        }
        let l4 = offload::l4_in_headers(&head[..n], chain.len);
        if blank && l4.is_none() {
            return Err(Drop::BadCsumBlank);
        }
        if let Some(mss) = chain.gso_size {
            let tcp = l4.filter(|l| l.protocol == smoltcp::wire::IpProtocol::Tcp);
            // A segment size at least the packet's payload segments nothing.
            if tcp.is_none_or(|l| usize::from(mss) >= l.len - l.header) {
                return Err(Drop::BadGso);
            }
        }
        Ok(())
    }

    /// Forgets the chain being read and frees the buffers it took.
    fn drop_chain(&mut self) {
        let Some(chain) = self.chain.take() else { return };
        for _ in 0..chain.slots {
            if let Some(s) = self.slots.pop_back() {
                self.free.push(s.buf);
            }
        }
    }
}
