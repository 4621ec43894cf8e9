//! `netif_responses`: netfront's receive and transmit rings against a
//! hostile backend.
//!
//! A real [`netfront::Netfront`] is set up on the simulated Xen (dom1,
//! backend dom0) without the xenstore handshake
//! (`Netfront::connect_unpublished`: the same rings, buffers, grants and
//! port). The harness plays netback on the shared ring pages: it reads the
//! frontend's requests and writes whatever responses the fuzzer asks for —
//! Linux-shaped packets (multi-slot chains, GSO extras, checksum flags,
//! with real Ethernet/IPv4/TCP or UDP headers), or single slots with any
//! id, offset, flags and status, extra-info slots of any kind, response
//! producer indices that lie, scribbles on the ring pages, buffer mappings
//! it keeps (so revocations fail). Checked:
//!
//! - nothing panics;
//! - every frame handed up is 14..=65535 bytes (1514 without
//!   scatter-gather), with GSO or a blank checksum only where negotiated;
//! - buffer accounting: frames queued, requests in flight and quarantined
//!   buffers stay within the buffers there are, the transmit requests in
//!   flight are exactly those the backend has not validly answered, and
//!   every bad transmit id is counted as such;
//! - the frontend's own requests are well formed (ids in range and not
//!   already in flight, grants that exist, sizes that add up);
//! - after the backend lets go and the device is released, nothing leaks
//!   (xensim's leak assertion).

use std::collections::BTreeSet;

use arbitrary::Arbitrary;
use netfront::features::BackendOffers;
use netfront::ring::{entry_offset, REQ_PROD, RSP_PROD, RX_ENTRY_SIZE, RX_RING_SIZE, TX_ENTRY_SIZE, TX_RING_SIZE};
use netfront::wire::{self, RxRequest, TxRequest};
use netfront::{Config, Netfront, Offloads, RxChecksum, TxMeta};
use xen_proto::iface::{EventChannels, GrantRef, GrantTable, SharedPage, PAGE_SIZE};
use xensim::{DomainConfig, SimEvtchn, SimGnttab, SimMapping, SimPage, Xen};

const MAX_OPS: usize = 64;

#[derive(Arbitrary, Debug)]
pub struct Input {
    pub setup: Setup,
    pub ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
pub struct Setup {
    pub sg: bool,
    pub csum: bool,
    pub gso: bool,
    pub backend_sg: bool,
    pub backend_gso: bool,
    pub backend_no_csum: bool,
    /// Extra rx / tx buffers beyond the least the config allows.
    pub rx_extra: u8,
    pub tx_extra: u8,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum IdMode {
    /// The id of the request answered.
    Right,
    /// Any id.
    Raw(u16),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum RxSlot {
    /// A data slot: `size` bytes at `offset` written into the posted page.
    Data { id: IdMode, offset: u16, flags: u16, size: u16, fill: u8 },
    /// A data slot with a raw status (negative, zero, oversize...).
    Status { id: IdMode, offset: u16, flags: u16, status: i16 },
    /// An extra-info slot.
    Extra { kind: u8, flags: u8, gso_size: u16, gso_type: u8 },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum L4 {
    Tcp,
    Udp,
    /// Not IPv4 at all.
    Other,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    /// A packet laid out as Linux netback does: whole pages at offset 0,
    /// flags on the first slot, a GSO extra right after it.
    RxLinux {
        len: u16,
        l4: L4,
        csum_blank: bool,
        validated: bool,
        gso: Option<u16>,
        publish: bool,
    },
    /// Slots exactly as given, each consuming the next rx request.
    RxSlots {
        slots: Vec<RxSlot>,
        publish: bool,
    },
    /// Publishes the rx responses written so far, `skew` off.
    RxPublish {
        skew: i8,
    },
    /// Reads the frontend's new tx requests.
    TxConsume,
    /// Answers pending tx request `which` (in order of arrival).
    TxRespond {
        which: u8,
        id: IdMode,
        status: i16,
    },
    /// Answers every pending tx request (extras with NULL), in order or
    /// last to first.
    TxRespondAll {
        status: i16,
        reverse: bool,
    },
    /// Publishes the tx responses written so far, `skew` off.
    TxPublish {
        skew: i8,
    },
    /// Keeps a mapping of a buffer the frontend granted us.
    Hold {
        tx: bool,
        which: u8,
    },
    /// Lets go of every kept mapping.
    Release,
    /// Writes anywhere on a ring page.
    Scribble {
        tx: bool,
        offset: u16,
        value: u32,
    },
    Notify,
    Send {
        len: u16,
        l4: L4,
        csum: bool,
        gso: Option<u16>,
        fill: u8,
    },
    Receive,
    Poll,
    HandleEvent,
}

type Nf = Netfront<SimGnttab, SimEvtchn>;

/// A tx request as the backend read it.
#[derive(Clone, Copy, Debug)]
struct Pending {
    /// None: an extra-info slot (answered with `NETIF_RSP_NULL`).
    id: Option<u16>,
    gref: GrantRef,
}

struct Backend {
    xen: Xen,
    gnt: SimGnttab,
    evt: SimEvtchn,
    port: u32,
    tx: SimPage,
    rx: SimPage,
    tx_req_cons: u32,
    tx_rsp_prod: u32,
    rx_req_cons: u32,
    rx_rsp_prod: u32,
    /// Tx requests read, not answered, in order.
    pending: Vec<Pending>,
    /// The ids the frontend has in flight as far as the backend can tell:
    /// requested, and no answer the frontend has read names them.
    in_flight: BTreeSet<u16>,
    /// Tx responses written (not `NETIF_RSP_NULL`), not yet published.
    written: Vec<u16>,
    /// Tx responses published, not yet read by the frontend. Whether one
    /// answers a request is decided when the frontend reads it: an id
    /// invented now may be in flight by then.
    published: Vec<u16>,
    /// Bad tx ids the frontend must have counted.
    bad_ids: u64,
    held: Vec<SimMapping>,
    /// The exact tx model holds (no scribbles on the tx ring, no lies
    /// about its producer index).
    exact: bool,
}

/// Ethernet + IPv4 + TCP/UDP headers and a pattern, `len` bytes.
fn frame(len: usize, l4: L4, fill: u8) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| fill.wrapping_add((i * 7) as u8)).collect();
    if len < 14 {
        return f;
    }
    f[..6].copy_from_slice(&[0x00, 0x16, 0x3e, 0x12, 0x34, 0x56]);
    f[6..12].copy_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]);
    let (proto, l4_header) = match l4 {
        L4::Tcp => (6u8, 20usize),
        L4::Udp => (17, 8),
        L4::Other => {
            f[12..14].copy_from_slice(&[0x86, 0xdd]);
            return f;
        }
    };
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    if len < 14 + 20 + l4_header {
        return f;
    }
    let ip_len = (len - 14).min(0xffff) as u16;
    let ip = &mut f[14..34];
    ip.copy_from_slice(&[0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2]);
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    let l = &mut f[34..34 + l4_header];
    l[..4].copy_from_slice(&[0x30, 0x39, 0x00, 0x50]);
    if proto == 6 {
        l[12] = 5 << 4;
        l[13] = 0x18;
        l[16] = 0;
        l[17] = 0;
    } else {
        l[4..6].copy_from_slice(&(ip_len - 20).to_be_bytes());
        l[6] = 0;
        l[7] = 0;
    }
    f
}

impl Backend {
    fn rx_requests(&self) -> u32 {
        self.rx.read_u32(REQ_PROD).wrapping_sub(self.rx_req_cons)
    }

    /// The next rx request (id, gref), consumed; None if the frontend
    /// posted none (or claims more than a ring).
    fn next_rx_request(&mut self) -> Option<(u16, GrantRef)> {
        let n = self.rx_requests();
        if n == 0 || n > RX_RING_SIZE {
            return None;
        }
        let mut e = [0u8; RX_ENTRY_SIZE];
        self.rx.read_bytes(entry_offset(self.rx_req_cons, RX_RING_SIZE, RX_ENTRY_SIZE), &mut e);
        self.rx_req_cons = self.rx_req_cons.wrapping_add(1);
        let r = RxRequest::new_unchecked(&e[..]);
        Some((r.id(), r.gref()))
    }

    fn put_rx(&mut self, entry: [u8; 8]) {
        self.rx.write_bytes(entry_offset(self.rx_rsp_prod, RX_RING_SIZE, RX_ENTRY_SIZE), &entry);
        self.rx_rsp_prod = self.rx_rsp_prod.wrapping_add(1);
    }

    fn rx_data(&mut self, id: &IdMode, offset: u16, flags: u16, status: i16, bytes: Option<&[u8]>) -> bool {
        let Some((req_id, gref)) = self.next_rx_request() else { return false };
        if let (Some(bytes), Some(page)) = (bytes, self.xen.granted_page(1, gref)) {
            let at = usize::from(offset).min(PAGE_SIZE);
            let n = bytes.len().min(PAGE_SIZE - at);
            page.write_bytes(at, &bytes[..n]);
        }
        let id = match id {
            IdMode::Right => req_id,
            IdMode::Raw(v) => *v,
        };
        let mut e = [0u8; 8];
        wire::RxResponse::new_unchecked(&mut e[..]).fill(id, offset, flags, status);
        self.put_rx(e);
        true
    }

    fn rx_extra(&mut self, kind: u8, flags: u8, gso_size: u16, gso_type: u8) -> bool {
        // An extra slot uses up a request too.
        if self.next_rx_request().is_none() {
            return false;
        }
        let s = gso_size.to_le_bytes();
        self.put_rx([kind, flags, s[0], s[1], gso_type, 0, 0, 0]);
        true
    }

    fn publish_rx(&mut self, skew: i8) {
        self.rx.write_u32(RSP_PROD, self.rx_rsp_prod.wrapping_add(skew as i32 as u32));
    }

    /// Reads the frontend's new tx requests and checks them.
    fn consume_tx(&mut self, tx_buffers: u16) {
        let prod = self.tx.read_u32(REQ_PROD);
        let n = prod.wrapping_sub(self.tx_req_cons);
        if n > TX_RING_SIZE {
            assert!(!self.exact, "the frontend published {n} tx requests");
            return;
        }
        let mut extra_next = false;
        while self.tx_req_cons != prod {
            let mut e = [0u8; TX_ENTRY_SIZE];
            self.tx.read_bytes(entry_offset(self.tx_req_cons, TX_RING_SIZE, TX_ENTRY_SIZE), &mut e);
            self.tx_req_cons = self.tx_req_cons.wrapping_add(1);
            if extra_next {
                extra_next = false;
                self.pending.push(Pending { id: None, gref: 0 });
                continue;
            }
            let r = TxRequest::new_unchecked(&e[..]);
            extra_next = r.flags() & wire::NETTXF_EXTRA_INFO != 0;
            if self.exact {
                assert!(r.id() < tx_buffers, "tx request id {} of {tx_buffers} buffers", r.id());
                assert!(self.in_flight.insert(r.id()), "tx id {} requested while in flight", r.id());
                // A response published before the backend read this
                // request may name its id (an invented one): a frontend
                // that read it took it as the answer and ended the grant.
                let answered = self.published.contains(&r.id());
                assert!(
                    answered || self.xen.granted_page(1, r.gref()).is_some(),
                    "tx request names gref {} not granted",
                    r.gref()
                );
                assert_eq!(r.offset(), 0, "tx data starts at the top of its page");
            }
            self.pending.push(Pending { id: Some(r.id()), gref: r.gref() });
        }
    }

    fn put_tx(&mut self, id: u16, status: i16) {
        let mut e = [0u8; TX_ENTRY_SIZE];
        wire::TxResponse::new_unchecked(&mut e[..]).fill(id, status);
        self.tx.write_bytes(entry_offset(self.tx_rsp_prod, TX_RING_SIZE, TX_ENTRY_SIZE), &e);
        self.tx_rsp_prod = self.tx_rsp_prod.wrapping_add(1);
        if status != wire::NETIF_RSP_NULL {
            self.written.push(id);
        }
    }

    /// The frontend read every published tx response (it drained the
    /// ring): what each did, in order.
    fn frontend_read_tx(&mut self, tx_buffers: u16) {
        // Requests it published since are in flight too.
        self.consume_tx(tx_buffers);
        for id in std::mem::take(&mut self.published) {
            if !self.in_flight.remove(&id) {
                self.bad_ids += 1;
            }
        }
    }

    fn respond(&mut self, p: Pending, id: &IdMode, status: i16) {
        match (p.id, id) {
            (None, IdMode::Right) => self.put_tx(0, wire::NETIF_RSP_NULL),
            (Some(real), IdMode::Right) => self.put_tx(real, status),
            (_, IdMode::Raw(v)) => self.put_tx(*v, status),
        }
    }

    fn publish_tx(&mut self, skew: i8) {
        if skew != 0 {
            self.exact = false;
        }
        self.tx.write_u32(RSP_PROD, self.tx_rsp_prod.wrapping_add(skew as i32 as u32));
        self.published.append(&mut self.written);
    }

    fn notify(&mut self) {
        let _ = self.evt.notify(self.port);
    }
}

/// Runs one input.
pub fn check(data: &[u8]) {
    let Some(input) = crate::from_bytes::<Input>(data) else { return };
    run(input);
}

fn run(input: Input) {
    let s = &input.setup;
    let offloads = Offloads { sg: s.sg, csum: s.csum, gso: s.gso };
    let least_rx = if s.sg { 19 } else { 1 };
    let least_tx = if s.sg { 17 } else { 1 };
    let config =
        Config { rx_buffers: least_rx + u16::from(s.rx_extra % 8), tx_buffers: least_tx + u16::from(s.tx_extra % 8), offloads };
    let offers = BackendOffers { sg: s.backend_sg, gso_tcpv4: s.backend_gso, no_csum_offload: s.backend_no_csum };
    let xen = Xen::new();
    let dom0 = xen.create_domain(0);
    let dom1 = xen.create_domain_with(1, DomainConfig { grant_refs: 160, max_ports: 4, max_pages: 160 });
    let (mut nf, published) =
        Nf::connect_unpublished(dom1.gnttab(), dom1.evtchn(), 0, config, offers).expect("setup on a fresh domain");
    let negotiated = nf.negotiated();
    let rx_offloads = negotiated.rx;
    let mut evt = dom0.evtchn();
    let port = evt.bind_interdomain(1, published.event_channel).expect("bind the frontend's port");
    let tx = xen.granted_page(1, published.tx_ring_ref).expect("tx ring granted");
    let rx = xen.granted_page(1, published.rx_ring_ref).expect("rx ring granted");
    let mut be = Backend {
        xen: xen.clone(),
        gnt: dom0.gnttab(),
        evt,
        port,
        tx,
        rx,
        tx_req_cons: 0,
        tx_rsp_prod: 0,
        rx_req_cons: 0,
        rx_rsp_prod: 0,
        pending: Vec::new(),
        in_flight: BTreeSet::new(),
        written: Vec::new(),
        published: Vec::new(),
        bad_ids: 0,
        held: Vec::new(),
        exact: true,
    };
    let max_rx = if rx_offloads.sg { wire::MAX_PACKET } else { wire::MAX_FRAME };
    let buffers = usize::from(config.rx_buffers) + usize::from(config.tx_buffers);
    let mut out = Vec::new();

    for op in input.ops.iter().take(MAX_OPS) {
        // Whether this step has the frontend drain the tx ring for sure
        // (poll, handle_event, a receive with nothing queued), or maybe (a
        // send reclaims only when it runs out of room).
        let was_up = nf.is_up();
        let drains = match op {
            Op::Poll | Op::HandleEvent => true,
            Op::Receive => nf.rx_queued() == 0,
            _ => false,
        };
        if matches!(op, Op::Send { .. }) && !be.published.is_empty() {
            be.exact = false;
        }
        match op {
            Op::RxLinux { len, l4, csum_blank, validated, gso, publish } => {
                let len = usize::from(*len).max(1);
                let f = frame(len, *l4, 0x5a);
                let chunks: Vec<&[u8]> = f.chunks(PAGE_SIZE).collect();
                let mut flags0 = 0;
                if *csum_blank {
                    flags0 |= wire::NETRXF_CSUM_BLANK | wire::NETRXF_DATA_VALIDATED;
                } else if *validated {
                    flags0 |= wire::NETRXF_DATA_VALIDATED;
                }
                if gso.is_some() {
                    flags0 |= wire::NETRXF_EXTRA_INFO;
                }
                for (i, c) in chunks.iter().enumerate() {
                    let more = if i + 1 < chunks.len() { wire::NETRXF_MORE_DATA } else { 0 };
                    let flags = more | if i == 0 { flags0 } else { 0 };
                    if !be.rx_data(&IdMode::Right, 0, flags, c.len() as i16, Some(c)) {
                        break;
                    }
                    if let (0, Some(mss)) = (i, gso) {
                        if !be.rx_extra(wire::XEN_NETIF_EXTRA_TYPE_GSO, 0, *mss, wire::XEN_NETIF_GSO_TYPE_TCPV4) {
                            break;
                        }
                    }
                }
                if *publish {
                    be.publish_rx(0);
                    be.notify();
                }
            }
            Op::RxSlots { slots, publish } => {
                for slot in slots.iter().take(24) {
                    let ok = match slot {
                        RxSlot::Data { id, offset, flags, size, fill } => {
                            let size = usize::from(*size) % (PAGE_SIZE + 1);
                            let bytes = frame(size, L4::Tcp, *fill);
                            be.rx_data(id, *offset, *flags, size as i16, Some(&bytes))
                        }
                        RxSlot::Status { id, offset, flags, status } => be.rx_data(id, *offset, *flags, *status, None),
                        RxSlot::Extra { kind, flags, gso_size, gso_type } => be.rx_extra(*kind, *flags, *gso_size, *gso_type),
                    };
                    if !ok {
                        break;
                    }
                }
                if *publish {
                    be.publish_rx(0);
                    be.notify();
                }
            }
            Op::RxPublish { skew } => {
                be.publish_rx(*skew);
                be.notify();
            }
            Op::TxConsume => be.consume_tx(config.tx_buffers),
            Op::TxRespond { which, id, status } => {
                // Read first, so an invented id is judged against every
                // request the frontend published.
                be.consume_tx(config.tx_buffers);
                if !be.pending.is_empty() {
                    let p = be.pending.remove(usize::from(*which) % be.pending.len());
                    be.respond(p, id, *status);
                }
            }
            Op::TxRespondAll { status, reverse } => {
                be.consume_tx(config.tx_buffers);
                let mut all: Vec<Pending> = be.pending.drain(..).collect();
                if *reverse {
                    all.reverse();
                }
                for p in all {
                    be.respond(p, &IdMode::Right, *status);
                }
            }
            Op::TxPublish { skew } => {
                be.publish_tx(*skew);
                be.notify();
            }
            Op::Hold { tx: true, which } => {
                let ids: Vec<Pending> = be.pending.iter().filter(|p| p.id.is_some()).copied().collect();
                if !ids.is_empty() {
                    let p = ids[usize::from(*which) % ids.len()];
                    if let Ok(m) = be.gnt.map(1, p.gref, true) {
                        be.held.push(m);
                    }
                }
            }
            Op::Hold { tx: false, which } => {
                // The buffer posted in some slot not yet answered.
                let n = be.rx_requests();
                if n > 0 && n <= RX_RING_SIZE {
                    let idx = be.rx_req_cons.wrapping_add(u32::from(*which) % n);
                    let mut e = [0u8; RX_ENTRY_SIZE];
                    be.rx.read_bytes(entry_offset(idx, RX_RING_SIZE, RX_ENTRY_SIZE), &mut e);
                    let gref = RxRequest::new_unchecked(&e[..]).gref();
                    if let Ok(m) = be.gnt.map(1, gref, false) {
                        be.held.push(m);
                    }
                }
            }
            Op::Release => {
                for m in be.held.drain(..) {
                    be.gnt.unmap(m).expect("unmap a kept mapping");
                }
            }
            Op::Scribble { tx, offset, value } => {
                let at = usize::from(*offset) % (PAGE_SIZE - 3);
                if *tx {
                    be.exact = false;
                    be.tx.write_u32(at, *value);
                } else {
                    be.rx.write_u32(at, *value);
                }
            }
            Op::Notify => be.notify(),
            Op::Send { len, l4, csum, gso, fill } => {
                let len = usize::from(*len) % (wire::MAX_PACKET + 16);
                let f = frame(len, *l4, *fill);
                let meta = TxMeta { csum: *csum, gso_size: *gso };
                let up = nf.is_up();
                match nf.send(&f, meta) {
                    Ok(()) => assert!(up && (wire::MIN_FRAME..=nf.max_tx_frame()).contains(&len)),
                    Err(netfront::TxError::BadLength(n)) => assert_eq!(n, len),
                    Err(_) => {}
                }
            }
            Op::Receive => {
                if let Some(meta) = nf.receive_into(&mut out) {
                    let len = out.len();
                    assert!((wire::MIN_FRAME..=max_rx).contains(&len), "frame of {len} bytes handed up (limit {max_rx})");
                    if meta.gso_size.is_some() {
                        assert!(rx_offloads.gso, "a GSO frame without GSO negotiated");
                        assert!(meta.gso_size != Some(0));
                    }
                    if meta.checksum == RxChecksum::Blank {
                        assert!(rx_offloads.csum, "a blank checksum without checksum offload");
                    }
                }
            }
            Op::Poll => nf.poll(),
            Op::HandleEvent => {
                nf.handle_event();
            }
        }
        // What can be checked after any step.
        assert!(nf.rx_queued() <= usize::from(config.rx_buffers));
        assert!(nf.tx_in_flight() <= usize::from(config.tx_buffers));
        assert!(nf.quarantined() <= buffers);
        let grants = dom1.gnttab().granted().len();
        assert!(grants <= 2 + buffers, "{grants} grants for {buffers} buffers");
        if drains && was_up {
            be.frontend_read_tx(config.tx_buffers);
        }
        if nf.is_up() && be.exact && be.published.is_empty() {
            // The frontend read every published tx response: its view of
            // what is in flight is the backend's, and every invented or
            // repeated id was counted.
            let c = nf.counters();
            let bad = c.bad_responses.tx_id_out_of_range + c.bad_responses.tx_not_outstanding;
            assert_eq!(nf.tx_in_flight(), be.in_flight.len() + unconsumed_ids(&be), "tx requests in flight");
            assert_eq!(bad, be.bad_ids, "bad tx ids counted");
        }
    }

    // The backend lets go; the frontend takes its buffers back.
    for m in be.held.drain(..) {
        be.gnt.unmap(m).expect("unmap a kept mapping");
    }
    nf.poll();
    let busy = nf.release_unpublished();
    assert_eq!(busy, 0, "grants still busy after the backend unmapped everything");
    assert!(nf.into_handles().is_ok(), "everything released");
    be.evt.close(be.port).expect("close the backend's port");
    drop(be);
    let leaks = xen.leaks();
    assert!(leaks.is_empty(), "leaks: {leaks:#?}");
}

/// Data requests the frontend published that the backend has not read.
fn unconsumed_ids(be: &Backend) -> usize {
    let prod = be.tx.read_u32(REQ_PROD);
    let mut n = 0;
    let mut i = be.tx_req_cons;
    let mut extra_next = false;
    while i != prod {
        let mut e = [0u8; TX_ENTRY_SIZE];
        be.tx.read_bytes(entry_offset(i, TX_RING_SIZE, TX_ENTRY_SIZE), &mut e);
        i = i.wrapping_add(1);
        if extra_next {
            extra_next = false;
            continue;
        }
        extra_next = TxRequest::new_unchecked(&e[..]).flags() & wire::NETTXF_EXTRA_INFO != 0;
        n += 1;
    }
    n
}
