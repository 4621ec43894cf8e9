//! The rx ring: packets to the frontend, laid out as Linux 6.1
//! `xenvif_rx_skb` does (rx.c), or in a hostile variant.

use xen_proto::iface::{GrantTable, SharedPage, XenError, PAGE_SIZE};

use super::faults::{Applies, NetbackFault};
use super::{
    gso_extra, push_responses, ring_u16, slot_offset, Conn, FrontendFeatures, Inner, QueuedRx, EXTRA_FLAG_MORE, GSO_TYPE_TCPV4,
    REQ_EVENT, REQ_PROD, RSP_ERROR,
};
use crate::page::SimMapping;

const RX_SLOT: usize = 8;
const NETRXF_DATA_VALIDATED: u16 = 1;
const NETRXF_CSUM_BLANK: u16 = 2;
const NETRXF_MORE_DATA: u16 = 4;
const NETRXF_EXTRA_INFO: u16 = 8;
/// A packet never exceeds this (GSO < 64 KiB, MTU ≤ 65517).
const MAX_PACKET: usize = 65535;
/// Offset claimed by [`NetbackFault::RxSlotOutsidePage`].
const OUTSIDE_OFFSET: u16 = 256;

/// A packet for the frontend, with the skb state Linux would carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RxPacket {
    /// The frame.
    pub data: Vec<u8>,
    /// `CHECKSUM_PARTIAL`: the L4 checksum field holds the pseudo-header
    /// sum (sent as `csum_blank | data_validated`).
    pub csum_blank: bool,
    /// `CHECKSUM_UNNECESSARY` (sent as `data_validated`).
    pub data_validated: bool,
    /// A GSO TCPv4 packet with this MSS (sent with a GSO extra).
    pub gso_size: Option<u16>,
}

impl RxPacket {
    /// A frame with no checksum state and no GSO.
    pub fn plain(data: Vec<u8>) -> RxPacket {
        RxPacket { data, csum_blank: false, data_validated: false, gso_size: None }
    }
}

/// One response slot to write.
enum Slot {
    Data { bytes: Vec<u8>, flags: u16, offset: u16, status: Option<i16> },
    Extra([u8; 8]),
}

/// A packet's slots, in ring order.
struct Plan {
    slots: Vec<Slot>,
    /// A chain left open: publish nothing after it in this push.
    ends_push: bool,
}

fn data_slot(bytes: &[u8], flags: u16) -> Slot {
    Slot::Data { bytes: bytes.to_vec(), flags, offset: 0, status: None }
}

fn csum_flags(p: &RxPacket) -> u16 {
    if p.csum_blank {
        NETRXF_CSUM_BLANK | NETRXF_DATA_VALIDATED
    } else if p.data_validated {
        NETRXF_DATA_VALIDATED
    } else {
        0
    }
}

/// `xenvif_rx_skb`: data packed into whole pages at offset 0; slot 0
/// carries the checksum flags, then the GSO extra, then the other data.
fn linux_plan(p: &RxPacket) -> Plan {
    let chunks: Vec<&[u8]> = p.data.chunks(PAGE_SIZE).collect();
    let mut slots = Vec::with_capacity(chunks.len() + 1);
    for (i, c) in chunks.iter().enumerate() {
        let mut flags = if i + 1 < chunks.len() { NETRXF_MORE_DATA } else { 0 };
        if i == 0 {
            flags |= csum_flags(p);
            if p.gso_size.is_some() {
                flags |= NETRXF_EXTRA_INFO;
            }
        }
        slots.push(data_slot(c, flags));
        if let (0, Some(size)) = (i, p.gso_size) {
            slots.push(Slot::Extra(gso_extra(size, GSO_TYPE_TCPV4, 0)));
        }
    }
    Plan { slots, ends_push: false }
}

/// Why the frontend cannot take `p` (Linux would have segmented or
/// checksummed it in software first): the test is wrong.
fn unfit(p: &RxPacket, fe: &FrontendFeatures) -> Option<&'static str> {
    if p.data.len() > PAGE_SIZE && !fe.sg {
        Some("longer than a page but the frontend has no feature-sg")
    } else if p.gso_size.is_some() && !(fe.gso_tcpv4 && fe.sg) {
        Some("GSO but the frontend lacks feature-gso-tcpv4 or feature-sg")
    } else if (p.gso_size.is_some() || p.csum_blank) && fe.no_csum_offload {
        Some("csum_blank or GSO but the frontend wrote feature-no-csum-offload")
    } else if p.gso_size == Some(0) {
        Some("GSO size 0 (Linux never sends it; use NetbackFault::RxGsoSize)")
    } else {
        None
    }
}

fn data_indices(plan: &Plan) -> Vec<usize> {
    (0..plan.slots.len()).filter(|&i| matches!(plan.slots[i], Slot::Data { .. })).collect()
}

/// The index of the packet's extra slot, adding a GSO one if absent.
fn ensure_extra(plan: &mut Plan, p: &RxPacket) -> usize {
    if !matches!(plan.slots.get(1), Some(Slot::Extra(_))) {
        let e = gso_extra(p.gso_size.unwrap_or(0), GSO_TYPE_TCPV4, 0);
        plan.slots.insert(1, Slot::Extra(e));
        set_flags(&mut plan.slots[0], |f| f | NETRXF_EXTRA_INFO);
    }
    1
}

fn set_flags(s: &mut Slot, f: impl Fn(u16) -> u16) {
    if let Slot::Data { flags, .. } = s {
        *flags = f(*flags);
    }
}

fn extra_mut<'a>(plan: &'a mut Plan, p: &RxPacket) -> &'a mut [u8; 8] {
    let i = ensure_extra(plan, p);
    match &mut plan.slots[i] {
        Slot::Extra(e) => e,
        Slot::Data { .. } => unreachable!("ensure_extra returns an extra slot"),
    }
}

/// The slots of `p` sent under hostile fault `f`.
fn hostile_plan(p: &RxPacket, f: NetbackFault) -> Result<Plan, String> {
    use NetbackFault::*;
    let mut plan = linux_plan(p);
    match f {
        RxChainNeverEnds(n) => {
            let filler = [0u8; PAGE_SIZE];
            let mut chunks = p.data.chunks(PAGE_SIZE);
            plan.slots = (0..n.max(1)).map(|_| data_slot(chunks.next().unwrap_or(&filler), NETRXF_MORE_DATA)).collect();
            set_flags(&mut plan.slots[0], |f| f | csum_flags(p));
            if p.gso_size.is_some() {
                ensure_extra(&mut plan, p);
            }
            plan.ends_push = true;
        }
        RxMoreDataOnLast => {
            let last = *data_indices(&plan).last().expect("non-empty packet");
            set_flags(&mut plan.slots[last], |f| f | NETRXF_MORE_DATA);
            plan.ends_push = true;
        }
        RxGsoSize(size) => extra_mut(&mut plan, p)[2..4].copy_from_slice(&size.to_le_bytes()),
        RxGsoType(kind) => extra_mut(&mut plan, p)[4] = kind,
        RxExtraType(kind) => extra_mut(&mut plan, p)[0] = kind,
        RxExtraMoreForever(n) => {
            plan.slots.truncate(1);
            set_flags(&mut plan.slots[0], |f| f | NETRXF_EXTRA_INFO);
            let size = p.gso_size.unwrap_or(0);
            for _ in 0..n.max(1) {
                let e = gso_extra(size, GSO_TYPE_TCPV4, EXTRA_FLAG_MORE);
                plan.slots.push(Slot::Extra(e));
            }
            plan.ends_push = true;
        }
        RxCsumBlankShort => {
            let ihl = match p.data.get(14) {
                Some(v) if v >> 4 == 4 => usize::from(v & 0xf) * 4,
                _ => 20,
            };
            let cut = p.data.len().min(14 + ihl + 10);
            let flags = NETRXF_CSUM_BLANK | NETRXF_DATA_VALIDATED;
            plan.slots = vec![data_slot(&p.data[..cut], flags)];
        }
        RxSlotOutsidePage | RxStatusInChain(_) => {
            let data = data_indices(&plan);
            if data.len() < 3 {
                return Err(format!("{f:?} needs a packet of 3 or more slots"));
            }
            if let Slot::Data { offset, status, .. } = &mut plan.slots[data[1]] {
                match f {
                    RxStatusInChain(s) => *status = Some(s),
                    _ => *offset = OUTSIDE_OFFSET,
                }
            }
        }
        _ => unreachable!("not an rx packet fault: {f:?}"),
    }
    Ok(plan)
}

/// The slots of a queued packet, or why it is dropped.
fn plan(q: &QueuedRx, fe: &FrontendFeatures) -> Result<Plan, String> {
    let p = &q.packet;
    if p.data.is_empty() || p.data.len() > MAX_PACKET {
        return Err(format!("rx packet of {} bytes", p.data.len()));
    }
    match q.hostile {
        Some(f) => hostile_plan(p, f),
        None => match unfit(p, fe) {
            Some(why) => Err(format!("rx packet {why}")),
            None => Ok(linux_plan(p)),
        },
    }
}

/// `xenvif_rx_ring_slots_available`: arms req_event = req_prod + 1
/// while there are too few requests.
fn slots_available(ring: &SimMapping, cons: u32, needed: u32) -> bool {
    loop {
        let prod = ring.read_u32(REQ_PROD);
        if prod.wrapping_sub(cons) >= needed {
            return true;
        }
        ring.write_u32(REQ_EVENT, prod.wrapping_add(1));
        if ring.read_u32(REQ_PROD) == prod {
            return false;
        }
    }
}

impl Inner {
    /// Delivers queued packets into posted buffers; true if the frontend
    /// must be notified.
    pub(super) fn do_rx(&mut self) -> bool {
        let mut conn = self.conn.take().expect("connected");
        let mut done = 0;
        conn.rx_stalled = false;
        while let Some(q) = self.rx_queue.front() {
            let plan = match plan(q, &conn.fe) {
                Ok(p) => p,
                Err(e) => {
                    self.error(e);
                    self.rx_queue.pop_front();
                    continue;
                }
            };
            if !slots_available(&conn.rx, conn.rx_req_cons, plan.slots.len() as u32) {
                // req_event is armed: wait for a kick.
                conn.rx_stalled = true;
                break;
            }
            self.rx_queue.pop_front();
            self.rx_write(&mut conn, plan.slots);
            done += 1;
            if plan.ends_push {
                break;
            }
        }
        if done > 0 && self.take_fault(Applies::RxBatch).is_some() {
            write_rx_rsp(&conn.rx, conn.rx_rsp_prod_pvt, 0, 0, 0, 60);
            conn.rx_rsp_prod_pvt = conn.rx_rsp_prod_pvt.wrapping_add(1);
        }
        let notify = done > 0 && push_responses(&conn.rx, conn.rx_rsp_prod_pvt);
        self.conn = Some(conn);
        notify
    }

    /// Copies one packet into the next requests' buffers and writes its
    /// responses (published later, all at once).
    fn rx_write(&mut self, conn: &mut Conn, slots: Vec<Slot>) {
        for (k, slot) in slots.into_iter().enumerate() {
            let at = slot_offset(conn.rx_req_cons, RX_SLOT);
            let rsp = conn.rx_rsp_prod_pvt;
            conn.rx_req_cons = conn.rx_req_cons.wrapping_add(1);
            conn.rx_rsp_prod_pvt = conn.rx_rsp_prod_pvt.wrapping_add(1);
            let (bytes, mut flags, mut offset, status) = match slot {
                Slot::Extra(e) => {
                    conn.rx.write_bytes(slot_offset(rsp, RX_SLOT), &e);
                    continue;
                }
                Slot::Data { bytes, flags, offset, status } => (bytes, flags, offset, status),
            };
            let id = ring_u16(&conn.rx, at);
            let gref = conn.rx.read_u32(at + 4);
            // A failed copy's grant status replaces the response status.
            let mut status = match self.gnt.map(self.fe_dom, gref, false) {
                Ok(m) => {
                    m.write_bytes(0, &bytes);
                    self.gnt.unmap(m).unwrap();
                    status.unwrap_or(bytes.len() as i16)
                }
                Err(e) => {
                    self.error(format!("mapping rx gref {gref}: {e:?}"));
                    match e {
                        XenError::Status(s) => s,
                        _ => RSP_ERROR,
                    }
                }
            };
            let mut rid = id;
            if k == 0 {
                match self.take_fault(Applies::RxResponse) {
                    Some(NetbackFault::RxId(x)) => rid = x,
                    Some(NetbackFault::RxDuplicate) => rid = conn.last_rx_id.unwrap_or(id),
                    Some(NetbackFault::RxStatus(s)) => status = s,
                    Some(NetbackFault::RxOffset(o)) => offset = o,
                    Some(NetbackFault::RxFlags(f)) => flags = f,
                    _ => {}
                }
                self.stats.rx_delivered += 1;
            }
            conn.last_rx_id = Some(rid);
            write_rx_rsp(&conn.rx, rsp, rid, offset, flags, status);
        }
    }
}

fn write_rx_rsp(p: &SimMapping, idx: u32, id: u16, offset: u16, flags: u16, status: i16) {
    let mut b = [0u8; 8];
    b[..2].copy_from_slice(&id.to_le_bytes());
    b[2..4].copy_from_slice(&offset.to_le_bytes());
    b[4..6].copy_from_slice(&flags.to_le_bytes());
    b[6..].copy_from_slice(&status.to_le_bytes());
    p.write_bytes(slot_offset(idx, RX_SLOT), &b);
}
