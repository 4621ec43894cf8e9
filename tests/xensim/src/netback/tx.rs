//! The tx ring: packets from the frontend, parsed as Linux 6.1
//! `xenvif_tx_build_gops` does (netback.c), with its checks.

use xen_proto::iface::{GrantTable, SharedPage, PAGE_SIZE};

use super::faults::{Applies, NetbackFault};
use super::inet::{self, CsumBlank, NotL4};
use super::{
    final_check_requests, push_responses, ring_u16, slot_offset, Conn, Inner, EXTRA_FLAG_MORE, EXTRA_TYPE_GSO, GSO_TYPE_TCPV4,
    REQ_PROD, RING_SLOTS, RSP_ERROR, RSP_NULL, RSP_OKAY,
};
use crate::page::SimMapping;

const TX_SLOT: usize = 12;
const NETTXF_CSUM_BLANK: u16 = 1;
const NETTXF_DATA_VALIDATED: u16 = 2;
const NETTXF_MORE_DATA: u16 = 4;
const NETTXF_EXTRA_INFO: u16 = 8;
/// Linux leaves stale bytes in a NULL response's id; ours are these.
const NULL_ID: u16 = 0xdead;
const GSO_TYPE_TCPV6: u8 = 2;
const EXTRA_TYPE_MCAST_ADD: u8 = 2;
const EXTRA_TYPE_MCAST_DEL: u8 = 3;
/// `XEN_NETIF_EXTRA_TYPE_MAX` in Linux 6.1 (XDP = 5 is the last).
const EXTRA_TYPE_MAX: u8 = 6;
/// `XEN_NETBK_LEGACY_SLOTS_MAX`: following slots beyond this drop.
const MAX_FOLLOWING: usize = 18;
/// `fatal_skb_slots`: needing more following slots than this is fatal.
const FATAL_FOLLOWING: usize = 20;
const ETH_HLEN: u16 = 14;

/// The GSO extra of a tx packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxGso {
    /// `gso.size`: the MSS.
    pub size: u16,
    /// `gso.type`: 1 = TCPv4, 2 = TCPv6.
    pub kind: u8,
}

/// One packet the frontend sent, as reassembled from its slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxPacket {
    /// The frame, as sent (a `csum_blank` checksum field still holds the
    /// frontend's seed).
    pub data: Vec<u8>,
    /// `NETTXF_csum_blank`.
    pub csum_blank: bool,
    /// `NETTXF_data_validated`.
    pub data_validated: bool,
    /// The GSO extra, if any.
    pub gso: Option<TxGso>,
    /// Data slots used (extras not counted).
    pub slots: usize,
}

impl TxPacket {
    /// What a bridge in front of a NIC without offloads would put on the
    /// wire: a GSO TCP/IPv4 packet cut into MSS-sized frames with fresh
    /// headers and checksums, a `csum_blank` frame with its checksum
    /// completed, any other frame as is. Empty for what Linux would drop
    /// there (GSO that is not TCP/IPv4 or has no more than one MSS of
    /// payload, `csum_blank` on a frame that is not IPv4 TCP/UDP).
    pub fn segment(&self) -> Vec<Vec<u8>> {
        match self.gso {
            Some(g) if g.kind == GSO_TYPE_TCPV4 => inet::segment_tcpv4(&self.data, g.size).unwrap_or_default(),
            Some(_) => Vec::new(),
            None if self.csum_blank => inet::completed(&self.data).into_iter().collect(),
            None => vec![self.data.clone()],
        }
    }
}

/// `netif_tx_request`.
#[derive(Clone, Copy, Debug)]
struct TxReq {
    gref: u32,
    offset: u16,
    flags: u16,
    id: u16,
    size: u16,
}

fn read_req(ring: &SimMapping, idx: u32) -> TxReq {
    let at = slot_offset(idx, TX_SLOT);
    TxReq {
        gref: ring.read_u32(at),
        offset: ring_u16(ring, at + 4),
        flags: ring_u16(ring, at + 6),
        id: ring_u16(ring, at + 8),
        size: ring_u16(ring, at + 10),
    }
}

fn read_extra(ring: &SimMapping, idx: u32) -> [u8; 8] {
    let mut e = [0u8; 8];
    ring.read_bytes(slot_offset(idx, TX_SLOT), &mut e);
    e
}

/// One parsed request chain.
enum Parsed {
    /// A packet: `first.size` is already the first slot's own length.
    Packet { first: TxReq, extras: Vec<[u8; 8]>, following: Vec<TxReq> },
    /// A multicast filter update (no packet): answered OKAY.
    Control { first: TxReq, extras: usize },
    /// Dropped: every slot answered ERROR (`xenvif_tx_err`).
    Drop { first: TxReq, extras: usize, following: Vec<TxReq>, why: String },
    /// The vif is disabled (`xenvif_fatal_tx_err`).
    Fatal(String),
}

/// Parses the chain at `cons`, with `work` requests published.
fn parse(ring: &SimMapping, cons: u32, work: u32) -> (u32, Parsed) {
    let mut first = read_req(ring, cons);
    let mut used = 1u32;
    let mut extras = Vec::new();
    if first.flags & NETTXF_EXTRA_INFO != 0 {
        loop {
            if used >= work {
                let why = "missing extra info: the extra chain runs past req_prod";
                return (used, Parsed::Fatal(why.into()));
            }
            let e = read_extra(ring, cons.wrapping_add(used));
            used += 1;
            if e[0] == 0 || e[0] >= EXTRA_TYPE_MAX {
                return (used, Parsed::Fatal(format!("invalid extra type {}", e[0])));
            }
            extras.push(e);
            if e[1] & EXTRA_FLAG_MORE == 0 {
                break;
            }
        }
    }
    if extras.iter().any(|e| e[0] == EXTRA_TYPE_MCAST_ADD || e[0] == EXTRA_TYPE_MCAST_DEL) {
        let extras = extras.len();
        return (used, Parsed::Control { first, extras });
    }
    let mut following: Vec<TxReq> = Vec::new();
    let mut drop = None;
    let mut remaining = first.size;
    let mut more = first.flags & NETTXF_MORE_DATA != 0;
    while more {
        let n = following.len();
        if used + n as u32 >= work {
            let why = format!(
                "tx chain runs past req_prod: more_data on the last published request \
                 (id {})",
                following.last().unwrap_or(&first).id
            );
            return (used + n as u32, Parsed::Fatal(why));
        }
        if n >= FATAL_FOLLOWING {
            let why = format!("more than {FATAL_FOLLOWING} following data slots (malicious)");
            return (used + n as u32, Parsed::Fatal(why));
        }
        if drop.is_none() && n >= MAX_FOLLOWING {
            drop = Some(format!("more than {MAX_FOLLOWING} following data slots"));
        }
        let r = read_req(ring, cons.wrapping_add(used + n as u32));
        if drop.is_none() && r.size > remaining {
            drop = Some(format!(
                "tx slot sizes add up past the first request's size {} (a frame over 65535 \
                 bytes wraps it)",
                first.size
            ));
        }
        remaining = remaining.wrapping_sub(r.size);
        following.push(r);
        if usize::from(r.offset) + usize::from(r.size) > PAGE_SIZE {
            let why = format!("tx slot id {} crosses its page: offset {} size {}", r.id, r.offset, r.size);
            return (used + following.len() as u32, Parsed::Fatal(why));
        }
        more = r.flags & NETTXF_MORE_DATA != 0;
    }
    used += following.len() as u32;
    let drop = drop.or_else(|| {
        (remaining < ETH_HLEN).then(|| format!("first tx slot holds {remaining} bytes, fewer than an Ethernet header"))
    });
    if let Some(why) = drop {
        let extras = extras.len();
        return (used, Parsed::Drop { first, extras, following, why });
    }
    first.size = remaining;
    if usize::from(first.offset) + usize::from(first.size) > PAGE_SIZE {
        let why = format!("first tx slot id {} crosses its page: offset {} size {}", first.id, first.offset, first.size);
        return (used, Parsed::Fatal(why));
    }
    // A later extra of the same type overwrites an earlier one.
    if let Some(g) = extras.iter().rev().find(|e| e[0] == EXTRA_TYPE_GSO) {
        if u16::from_le_bytes([g[2], g[3]]) == 0 {
            return (used, Parsed::Fatal("GSO size 0".into()));
        }
        if g[4] != GSO_TYPE_TCPV4 && g[4] != GSO_TYPE_TCPV6 {
            return (used, Parsed::Fatal(format!("bad GSO type {}", g[4])));
        }
    }
    let packet = Parsed::Packet { first, extras, following };
    (used, packet)
}

impl Inner {
    /// Consumes tx requests; true if the frontend must be notified.
    pub(super) fn do_tx(&mut self) -> bool {
        let mut conn = self.conn.take().expect("connected");
        let mut consumed = 0;
        let rsp_start = conn.tx_rsp_prod_pvt;
        conn.tx_more = false;
        'ring: loop {
            let prod = conn.tx.read_u32(REQ_PROD);
            while conn.tx_req_cons != prod {
                if consumed >= self.tx_budget {
                    conn.tx_more = true;
                    break 'ring;
                }
                let work = prod.wrapping_sub(conn.tx_req_cons);
                if work > RING_SLOTS {
                    self.error(format!("fatal: impossible number of tx requests: req_prod {prod} req_cons {}", conn.tx_req_cons));
                    conn.disabled = true;
                    break 'ring;
                }
                let (used, parsed) = parse(&conn.tx, conn.tx_req_cons, work);
                conn.tx_req_cons = conn.tx_req_cons.wrapping_add(used);
                consumed += used as usize;
                self.stats.tx_requests += u64::from(used);
                match parsed {
                    Parsed::Packet { first, extras, following } => self.tx_packet(&mut conn, first, &extras, following),
                    Parsed::Control { first, extras } => {
                        self.tx_respond(&mut conn, &[(first.id, RSP_OKAY)], extras, false);
                    }
                    Parsed::Drop { first, extras, following, why } => {
                        self.error(format!("tx packet dropped: {why}"));
                        let slots: Vec<_> = std::iter::once(first).chain(following).map(|r| (r.id, RSP_ERROR)).collect();
                        self.tx_respond(&mut conn, &slots, extras, false);
                    }
                    Parsed::Fatal(why) => {
                        self.error(format!("fatal: {why}"));
                        conn.disabled = true;
                        break 'ring;
                    }
                }
            }
            if conn.tx_more || !final_check_requests(&conn.tx, conn.tx_req_cons) {
                break;
            }
        }
        let answered = conn.tx_rsp_prod_pvt != rsp_start;
        if answered && self.take_fault(Applies::TxBatch).is_some() {
            write_tx_rsp(&conn.tx, conn.tx_rsp_prod_pvt, 0, RSP_OKAY);
            conn.tx_rsp_prod_pvt = conn.tx_rsp_prod_pvt.wrapping_add(1);
        }
        let notify = answered && push_responses(&conn.tx, conn.tx_rsp_prod_pvt);
        self.conn = Some(conn);
        notify
    }

    /// Records what Linux lets pass but a correct frontend would not
    /// send this backend, copies the packet out of the granted pages and
    /// answers its slots.
    fn tx_packet(&mut self, conn: &mut Conn, first: TxReq, extras: &[[u8; 8]], following: Vec<TxReq>) {
        let gso = extras
            .iter()
            .rev()
            .find(|e| e[0] == EXTRA_TYPE_GSO)
            .map(|g| TxGso { size: u16::from_le_bytes([g[2], g[3]]), kind: g[4] });
        let csum_blank = first.flags & NETTXF_CSUM_BLANK != 0;
        let data_validated = first.flags & NETTXF_DATA_VALIDATED != 0;
        if !following.is_empty() && !self.features.sg {
            self.error(format!("multi-slot tx packet (id {}) without feature-sg", first.id));
        }
        if let Some(g) = gso {
            if !self.features.gso_tcpv4 {
                self.error(format!("tx GSO extra (id {}) without feature-gso-tcpv4", first.id));
            } else if g.kind != GSO_TYPE_TCPV4 {
                self.error(format!("tx GSO type {} not offered", g.kind));
            }
            if !csum_blank {
                self.error(format!("tx GSO packet (id {}) without csum_blank", first.id));
            }
        }
        if csum_blank && !self.features.csum_offload {
            self.error(format!("tx csum_blank (id {}) despite feature-no-csum-offload", first.id));
        }
        for r in following.iter().filter(|r| r.size == 0) {
            self.error(format!("zero-size following tx slot id {}", r.id));
        }

        let mut data = Vec::with_capacity(usize::from(first.size));
        let mut slots = Vec::with_capacity(1 + following.len());
        let mut failed = false;
        for r in std::iter::once(first).chain(following) {
            let status = self.tx_copy(r, &mut data);
            failed |= status != RSP_OKAY;
            slots.push((r.id, status));
        }
        let reverse = self.tx_reverse;
        self.tx_respond(conn, &slots, extras.len(), reverse);
        if failed {
            return;
        }
        let packet = TxPacket { data, csum_blank, data_validated, gso, slots: slots.len() };
        if csum_blank && !self.tx_check_csum(&packet) {
            return;
        }
        if let Some(g) = gso {
            self.stats.tx_gso_packets += 1;
            if g.kind == GSO_TYPE_TCPV4 && packet.segment().is_empty() {
                self.error(format!(
                    "tx GSO packet (id {}) that Linux cannot segment: not TCP/IPv4, or TCP \
                     payload not larger than the MSS {}",
                    first.id, g.size
                ));
            }
        }
        self.tx_packets.push_back(packet);
    }

    /// Appends slot `r`'s bytes to `data`; the slot's response status.
    fn tx_copy(&mut self, r: TxReq, data: &mut Vec<u8>) -> i16 {
        if r.size == 0 {
            return RSP_OKAY;
        }
        match self.gnt.map(self.fe_dom, r.gref, true) {
            Ok(m) => {
                let at = data.len();
                data.resize(at + usize::from(r.size), 0);
                m.read_bytes(usize::from(r.offset), &mut data[at..]);
                if self.hold_tx > 0 {
                    self.hold_tx -= 1;
                    self.held.push(m);
                } else {
                    self.gnt.unmap(m).unwrap();
                }
                RSP_OKAY
            }
            Err(e) => {
                self.error(format!("mapping tx gref {}: {e:?}", r.gref));
                RSP_ERROR
            }
        }
    }

    /// Verifies a `csum_blank` packet; false if Linux drops it
    /// (`checksum_setup` fails).
    fn tx_check_csum(&mut self, p: &TxPacket) -> bool {
        match inet::check_csum_blank(&p.data) {
            CsumBlank::Verified => self.stats.tx_csum_completed += 1,
            CsumBlank::WrongSeed { found, want } => self.error(format!(
                "csum_blank packet with a wrong pseudo-header seed: {found:#06x}, not \
                 {want:#06x}"
            )),
            CsumBlank::BadTail => self.error("csum_blank packet with non-zero bytes after its IP packet (or cut short)".into()),
            CsumBlank::NotL4(NotL4::Ipv6) => self.error("tx csum_blank on IPv6 without feature-ipv6-csum-offload".into()),
            CsumBlank::NotL4(NotL4::Unusable(why)) => {
                self.error(format!("tx csum_blank packet dropped: {why}"));
                return false;
            }
        }
        true
    }

    /// Writes one packet's responses: `slots` are its data slots (first
    /// first); the first one's response is followed by `extras` NULLs.
    fn tx_respond(&mut self, conn: &mut Conn, slots: &[(u16, i16)], extras: usize, reverse: bool) {
        let mut order: Vec<usize> = (0..slots.len()).collect();
        if reverse {
            order.reverse();
        }
        for i in order {
            let (id, mut status) = slots[i];
            let mut rid = id;
            match self.take_fault(Applies::TxResponse) {
                Some(NetbackFault::TxId(x)) => rid = x,
                Some(NetbackFault::TxDuplicate) => rid = conn.last_tx_id.unwrap_or(id),
                Some(NetbackFault::TxStatus(s)) => status = s,
                _ => {}
            }
            conn.last_tx_id = Some(rid);
            write_tx_rsp(&conn.tx, conn.tx_rsp_prod_pvt, rid, status);
            conn.tx_rsp_prod_pvt = conn.tx_rsp_prod_pvt.wrapping_add(1);
            if i == 0 {
                for _ in 0..extras {
                    write_tx_rsp(&conn.tx, conn.tx_rsp_prod_pvt, NULL_ID, RSP_NULL);
                    conn.tx_rsp_prod_pvt = conn.tx_rsp_prod_pvt.wrapping_add(1);
                }
            }
        }
    }
}

fn write_tx_rsp(p: &SimMapping, idx: u32, id: u16, status: i16) {
    let mut b = [0u8; 4];
    b[..2].copy_from_slice(&id.to_le_bytes());
    b[2..].copy_from_slice(&status.to_le_bytes());
    p.write_bytes(slot_offset(idx, TX_SLOT), &b);
}
