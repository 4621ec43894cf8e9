//! The fake netback's scatter-gather, checksum-offload and GSO modes,
//! checked with a raw frontend written here from the byte layouts of
//! netif.h: requests are written and responses read by hand.

use std::collections::BTreeMap;

use smoltcp::wire::{IpAddress, Ipv4Packet, TcpPacket};
use xen_proto::iface::{EventChannels, GrantRef, GrantTable, Port, SharedPage};
use xensim::{
    Domain, DomainConfig, FrontendFeatures, Netback, NetbackFault, NetbackFeatures, RxPacket, Sim, SimPage, TxGso, TxPacket,
};

const MAC: [u8; 6] = [0x00, 0x16, 0x3e, 0x12, 0x34, 0x56];
const FE: &str = "/local/domain/1/device/vif/0";
const BE: &str = "/local/domain/0/backend/vif/1/0";
const PAGE: usize = 4096;

// Shared ring header (ring.h) and entry sizes.
const REQ_PROD: usize = 0;
const REQ_EVENT: usize = 4;
const RSP_PROD: usize = 8;
const RSP_EVENT: usize = 12;
const HDR: usize = 64;
const TX_SLOT: usize = 12;
const RX_SLOT: usize = 8;

// netif.h flags: bits 0 and 1 are swapped between tx and rx.
const TXF_CSUM_BLANK: u16 = 1;
const TXF_DATA_VALIDATED: u16 = 2;
const TXF_MORE_DATA: u16 = 4;
const TXF_EXTRA_INFO: u16 = 8;
/// What a frontend sets on a packet whose checksum it left to dom0.
const BLANK: u16 = TXF_CSUM_BLANK | TXF_DATA_VALIDATED;
const RXF_DATA_VALIDATED: u16 = 1;
const RXF_CSUM_BLANK: u16 = 2;
const RXF_MORE_DATA: u16 = 4;
const RXF_EXTRA_INFO: u16 = 8;
const RSP_OKAY: i16 = 0;
const RSP_ERROR: i16 = -1;
const RSP_NULL: i16 = 1;

/// A GSO extra: type 1, flags, size, gso type, pad 0, features 0.
fn gso(size: u16, kind: u8, flags: u8) -> [u8; 8] {
    let s = size.to_le_bytes();
    [1, flags, s[0], s[1], kind, 0, 0, 0]
}

/// One rx response as read from the ring, with its buffer's bytes.
#[derive(Debug)]
struct RxRsp {
    raw: [u8; 8],
    data: Vec<u8>,
}

impl RxRsp {
    fn id(&self) -> u16 {
        u16::from_le_bytes([self.raw[0], self.raw[1]])
    }
    fn offset(&self) -> u16 {
        u16::from_le_bytes([self.raw[2], self.raw[3]])
    }
    fn flags(&self) -> u16 {
        u16::from_le_bytes([self.raw[4], self.raw[5]])
    }
    fn status(&self) -> i16 {
        i16::from_le_bytes([self.raw[6], self.raw[7]])
    }
}

/// A frontend made of bare rings, pages and xenstore writes.
struct Raw {
    sim: Sim,
    nb: Netback,
    dom: Domain,
    tx: SimPage,
    rx: SimPage,
    rings: Vec<GrantRef>,
    port: Port,
    tx_pvt: u32,
    tx_cons: u32,
    next_id: u16,
    tx_pages: Vec<(SimPage, GrantRef)>,
    rx_pvt: u32,
    rx_cons: u32,
    rx_bufs: BTreeMap<u32, (SimPage, GrantRef)>,
}

/// The frontend keys a frontend with every offload writes.
const FULL: &[(&str, &str)] = &[
    ("request-rx-copy", "1"),
    ("feature-rx-notify", "1"),
    ("feature-sg", "1"),
    ("feature-gso-tcpv4", "1"),
];

/// The keys of a frontend without SG, GSO or checksum offload.
const PLAIN: &[(&str, &str)] = &[("request-rx-copy", "1"), ("feature-no-csum-offload", "1")];

impl Raw {
    fn new(features: NetbackFeatures, keys: &[(&str, &str)]) -> Raw {
        let sim = Sim::new();
        let dom = sim.create_domain_with(1, DomainConfig { grant_refs: 1024, max_ports: 8, max_pages: 1024 });
        let nb = Netback::new_with(&sim, 1, 0, MAC, features);
        let mut g = dom.gnttab();
        let (tx, rx) = (g.alloc_page().unwrap(), g.alloc_page().unwrap());
        for ring in [&tx, &rx] {
            // SHARED_RING_INIT
            ring.write_u32(REQ_EVENT, 1);
            ring.write_u32(RSP_EVENT, 1);
        }
        let rings = vec![g.grant(&tx, 0, false).unwrap(), g.grant(&rx, 0, false).unwrap()];
        let port = dom.evtchn().alloc_unbound(0).unwrap();
        let raw = Raw {
            sim,
            nb,
            dom,
            tx,
            rx,
            rings,
            port,
            tx_pvt: 0,
            tx_cons: 0,
            next_id: 0,
            tx_pages: Vec::new(),
            rx_pvt: 0,
            rx_cons: 0,
            rx_bufs: BTreeMap::new(),
        };
        assert_eq!(raw.nb.frontend_features(), None);
        raw.write("tx-ring-ref", &raw.rings[0].to_string());
        raw.write("rx-ring-ref", &raw.rings[1].to_string());
        raw.write("event-channel", &port.to_string());
        for (k, v) in keys {
            raw.write(k, v);
        }
        raw.write("state", "4");
        raw.nb.step();
        assert!(raw.nb.is_connected(), "{:?}", raw.nb.stats().errors);
        raw
    }

    fn full() -> Raw {
        Raw::new(NetbackFeatures::default(), FULL)
    }

    /// Hostile packets reach this frontend all the same.
    fn plain() -> Raw {
        Raw::new(NetbackFeatures::default(), PLAIN)
    }

    fn write(&self, key: &str, v: &str) {
        self.sim.xs_write(&format!("{FE}/{key}"), v.as_bytes());
    }

    fn errors(&self) -> Vec<String> {
        self.nb.stats().errors
    }

    /// A fresh page holding `data` at `offset`, granted read-only.
    fn tx_page(&mut self, data: &[u8], offset: usize) -> GrantRef {
        let mut g = self.dom.gnttab();
        let page = g.alloc_page().unwrap();
        page.write_bytes(offset, data);
        let gref = g.grant(&page, 0, true).unwrap();
        self.tx_pages.push((page, gref));
        gref
    }

    fn put_tx(&mut self, slot: [u8; 12]) {
        let at = HDR + (self.tx_pvt % 256) as usize * TX_SLOT;
        self.tx.write_bytes(at, &slot);
        self.tx_pvt = self.tx_pvt.wrapping_add(1);
    }

    /// A data request for `data` at `offset` in its own page, claiming
    /// `size`; returns its id.
    fn tx_req(&mut self, data: &[u8], offset: u16, flags: u16, size: u16) -> u16 {
        let gref = self.tx_page(data, usize::from(offset));
        let id = self.next_id;
        self.next_id += 1;
        let mut s = [0u8; 12];
        s[..4].copy_from_slice(&gref.to_le_bytes());
        s[4..6].copy_from_slice(&offset.to_le_bytes());
        s[6..8].copy_from_slice(&flags.to_le_bytes());
        s[8..10].copy_from_slice(&id.to_le_bytes());
        s[10..].copy_from_slice(&size.to_le_bytes());
        self.put_tx(s);
        id
    }

    fn tx_extra(&mut self, e: [u8; 8]) {
        let mut s = [0u8; 12];
        s[..8].copy_from_slice(&e);
        self.put_tx(s);
    }

    /// Sends `frame` cut into slots of `cuts` bytes (the rest in the
    /// last), the first at offset 100, with `extras` after the first
    /// request; returns the data slots' ids.
    fn send(&mut self, frame: &[u8], cuts: &[usize], flags: u16, extras: &[[u8; 8]]) -> Vec<u16> {
        let mut chunks = Vec::new();
        let mut at = 0;
        for &c in cuts {
            chunks.push(&frame[at..at + c]);
            at += c;
        }
        chunks.push(&frame[at..]);
        let mut ids = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            let more = if i + 1 < chunks.len() { TXF_MORE_DATA } else { 0 };
            if i == 0 {
                let extra = if extras.is_empty() { 0 } else { TXF_EXTRA_INFO };
                ids.push(self.tx_req(c, 100, flags | more | extra, frame.len() as u16));
                for e in extras {
                    self.tx_extra(*e);
                }
            } else {
                ids.push(self.tx_req(c, 0, more, c.len() as u16));
            }
        }
        ids
    }

    /// Publishes the requests written, kicks the backend and runs it.
    fn publish_tx(&mut self) {
        self.tx.write_u32(REQ_PROD, self.tx_pvt);
        self.dom.evtchn().notify(self.port).unwrap();
        self.nb.step();
    }

    /// New tx responses as (id, status).
    fn tx_responses(&mut self) -> Vec<(u16, i16)> {
        let prod = self.tx.read_u32(RSP_PROD);
        let mut out = Vec::new();
        while self.tx_cons != prod {
            let at = HDR + (self.tx_cons % 256) as usize * TX_SLOT;
            let mut b = [0u8; 4];
            self.tx.read_bytes(at, &mut b);
            out.push((u16::from_le_bytes([b[0], b[1]]), i16::from_le_bytes([b[2], b[3]])));
            self.tx_cons = self.tx_cons.wrapping_add(1);
        }
        out
    }

    /// Posts `n` rx buffers (id = ring index), kicks and runs the backend.
    fn post_rx(&mut self, n: usize) {
        let mut g = self.dom.gnttab();
        for _ in 0..n {
            let page = g.alloc_page().unwrap();
            let gref = g.grant(&page, 0, false).unwrap();
            let at = HDR + (self.rx_pvt % 256) as usize * RX_SLOT;
            let mut s = [0u8; 8];
            s[..2].copy_from_slice(&(self.rx_pvt as u16).to_le_bytes());
            s[4..].copy_from_slice(&gref.to_le_bytes());
            self.rx.write_bytes(at, &s);
            self.rx_bufs.insert(self.rx_pvt, (page, gref));
            self.rx_pvt = self.rx_pvt.wrapping_add(1);
        }
        self.rx.write_u32(REQ_PROD, self.rx_pvt);
        self.dom.evtchn().notify(self.port).unwrap();
        self.nb.step();
    }

    /// New rx responses, each with the bytes its buffer holds.
    fn rx_responses(&mut self) -> Vec<RxRsp> {
        let prod = self.rx.read_u32(RSP_PROD);
        let mut g = self.dom.gnttab();
        let mut out = Vec::new();
        while self.rx_cons != prod {
            let at = HDR + (self.rx_cons % 256) as usize * RX_SLOT;
            let mut raw = [0u8; 8];
            self.rx.read_bytes(at, &mut raw);
            let (page, gref) = self.rx_bufs.remove(&self.rx_cons).expect("posted");
            let mut data = vec![0u8; PAGE];
            page.read_bytes(0, &mut data);
            g.revoke(gref).unwrap();
            g.free_page(page);
            out.push(RxRsp { raw, data });
            self.rx_cons = self.rx_cons.wrapping_add(1);
        }
        out
    }

    /// Closes the vif and gives everything back; nothing may leak.
    fn finish(self) {
        self.write("state", "6");
        self.nb.step();
        assert!(!self.nb.is_connected());
        let mut g = self.dom.gnttab();
        for (page, gref) in self.tx_pages.into_iter().chain(self.rx_bufs.into_values()) {
            g.revoke(gref).unwrap();
            g.free_page(page);
        }
        for r in self.rings {
            g.revoke(r).unwrap();
        }
        g.free_page(self.tx);
        g.free_page(self.rx);
        self.dom.evtchn().close(self.port).unwrap();
        self.sim.assert_no_leaks();
    }
}

// Checksums, written here independently of the crate under test.
fn csum_sum(data: &[u8], mut acc: u64) -> u64 {
    for w in data.chunks(2) {
        acc += u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
    }
    acc
}

fn csum_fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

const SRC: [u8; 4] = [10, 0, 0, 2];
const DST: [u8; 4] = [10, 0, 0, 1];

/// Ethernet + IPv4 + TCP with `payload`, TCP flags `flags`, and the
/// non-inverted pseudo-header sum in the TCP checksum (what a frontend
/// sends with csum_blank).
fn tcp_frame(payload: &[u8], flags: u8) -> Vec<u8> {
    let mut f = vec![0u8; 54];
    f[..6].copy_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]);
    f[6..12].copy_from_slice(&MAC);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let tot = (40 + payload.len()) as u16;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&tot.to_be_bytes());
    f[18..20].copy_from_slice(&0x1234u16.to_be_bytes());
    f[20] = 0x40; // DF
    f[22] = 64;
    f[23] = 6;
    f[26..30].copy_from_slice(&SRC);
    f[30..34].copy_from_slice(&DST);
    let ip = !csum_fold(csum_sum(&f[14..34], 0));
    f[24..26].copy_from_slice(&ip.to_be_bytes());
    f[34..36].copy_from_slice(&49152u16.to_be_bytes());
    f[36..38].copy_from_slice(&7u16.to_be_bytes());
    f[38..42].copy_from_slice(&1_000_000u32.to_be_bytes());
    f[42..46].copy_from_slice(&5u32.to_be_bytes());
    f[46] = 0x50;
    f[47] = flags;
    f[48..50].copy_from_slice(&65535u16.to_be_bytes());
    f.extend_from_slice(payload);
    let pseudo = csum_sum(&SRC, csum_sum(&DST, 6 + 20 + payload.len() as u64));
    f[50..52].copy_from_slice(&csum_fold(pseudo).to_be_bytes());
    f
}

const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;
const CWR: u8 = 0x80;

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Checks one segment with smoltcp; its IP id, sequence number, TCP
/// flags and payload.
fn check_segment(s: &[u8]) -> (u16, u32, u8, Vec<u8>) {
    let ip = Ipv4Packet::new_checked(&s[14..]).unwrap();
    assert!(ip.verify_checksum(), "IPv4 header checksum");
    assert_eq!(usize::from(ip.total_len()), s.len() - 14);
    let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
    let (src, dst) = (IpAddress::Ipv4(ip.src_addr()), IpAddress::Ipv4(ip.dst_addr()));
    assert!(tcp.verify_checksum(&src, &dst), "TCP checksum");
    let seq = u32::from_be_bytes(s[38..42].try_into().unwrap());
    (ip.ident(), seq, s[47], tcp.payload().to_vec())
}

#[test]
fn features_are_written_and_read_as_linux_does() {
    let raw = Raw::full();
    let key = |k: &str| raw.sim.xs_read(&format!("{BE}/{k}"));
    assert_eq!(key("feature-sg").as_deref(), Some(&b"1"[..]));
    assert_eq!(key("feature-gso-tcpv4").as_deref(), Some(&b"1"[..]));
    assert_eq!(key("feature-no-csum-offload"), None);
    assert_eq!(key("feature-rx-copy").as_deref(), Some(&b"1"[..]));
    assert_eq!(key("feature-rx-flip").as_deref(), Some(&b"0"[..]));
    let want = FrontendFeatures { rx_copy: true, rx_notify: true, sg: true, gso_tcpv4: true, no_csum_offload: false };
    assert_eq!(raw.nb.frontend_features(), Some(want));
    assert_eq!(raw.nb.frontend_rx_notify(), Some(true));
    assert_eq!(raw.nb.frontend_no_csum_offload(), Some(false));
    raw.finish();

    let none = NetbackFeatures { sg: false, gso_tcpv4: false, csum_offload: false };
    let raw = Raw::new(none, PLAIN);
    let key = |k: &str| raw.sim.xs_read(&format!("{BE}/{k}"));
    assert_eq!(key("feature-sg"), None);
    assert_eq!(key("feature-gso-tcpv4"), None);
    assert_eq!(key("feature-no-csum-offload").as_deref(), Some(&b"1"[..]));
    let want = FrontendFeatures { rx_copy: true, no_csum_offload: true, ..FrontendFeatures::default() };
    assert_eq!(raw.nb.frontend_features(), Some(want));
    assert_eq!(raw.nb.features(), none);
    raw.finish();
}

#[test]
fn multi_slot_gso_tx_is_reassembled_with_its_meta() {
    let mut raw = Raw::full();
    let frame = tcp_frame(&payload(10_000), ACK | PSH);
    let ids = raw.send(&frame, &[1000, 4096, 4096], BLANK, &[gso(1448, 1, 0)]);
    raw.publish_tx();
    assert_eq!(raw.errors(), Vec::<String>::new());
    let got = raw.nb.take_tx_packets();
    let want = TxPacket {
        data: frame.clone(),
        csum_blank: true,
        data_validated: true,
        gso: Some(TxGso { size: 1448, kind: 1 }),
        slots: 4,
    };
    assert_eq!(got, vec![want]);
    let s = raw.nb.stats();
    assert_eq!((s.tx_requests, s.tx_gso_packets, s.tx_csum_completed), (5, 1, 1));

    // One response per slot; the extra's NULL right after the first,
    // with an id that names no request.
    let rsp = raw.tx_responses();
    assert_eq!(rsp.len(), 5);
    assert_eq!(rsp[0], (ids[0], RSP_OKAY));
    assert_eq!(rsp[1].1, RSP_NULL);
    assert!(!ids.contains(&rsp[1].0), "NULL id {:#x}", rsp[1].0);
    let rest: Vec<_> = ids[1..].iter().map(|&id| (id, RSP_OKAY)).collect();
    assert_eq!(rsp[2..], rest[..]);

    // take_tx reads the same queue: it is empty now.
    let plain = tcp_frame(b"x", ACK);
    raw.send(&plain, &[], 0, &[]);
    raw.publish_tx();
    assert_eq!(raw.nb.take_tx(), vec![plain]);
    assert!(raw.nb.take_tx_packets().is_empty());
    raw.finish();
}

#[test]
fn reverse_responses_answer_the_data_slots_last_to_first() {
    let mut raw = Raw::full();
    raw.nb.set_tx_reverse_responses(true);
    let frame = tcp_frame(&payload(5000), ACK);
    let ids = raw.send(&frame, &[500, 3000], BLANK, &[gso(1000, 1, 0)]);
    raw.publish_tx();
    let rsp = raw.tx_responses();
    let got: Vec<_> = rsp.iter().map(|r| r.1).collect();
    assert_eq!(got, [RSP_OKAY, RSP_OKAY, RSP_OKAY, RSP_NULL]);
    assert_eq!([rsp[0].0, rsp[1].0, rsp[2].0], [ids[2], ids[1], ids[0]]);
    assert_eq!(raw.nb.take_tx(), vec![frame]);
    assert!(raw.errors().is_empty(), "{:?}", raw.errors());
    raw.finish();
}

/// What the backend does with a bad tx packet.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Every slot answered ERROR (extras NULL), nothing queued.
    Dropped,
    /// No response; the vif is disabled.
    Fatal,
    /// Queued and answered OKAY all the same.
    Delivered,
}

/// Sends one bad packet on a fresh vif offering `features`; checks the
/// single error it records (containing `want`) and what became of the
/// packet.
fn bad_tx_on(features: NetbackFeatures, want: &str, outcome: Outcome, send: impl FnOnce(&mut Raw)) {
    let mut raw = Raw::new(features, FULL);
    send(&mut raw);
    raw.publish_tx();
    let errors = raw.errors();
    assert_eq!(errors.len(), 1, "{want}: {errors:?}");
    assert!(errors[0].contains(want), "{:?} lacks {want:?}", errors[0]);
    let rsp = raw.tx_responses();
    let queued = raw.nb.take_tx().len();
    match outcome {
        Outcome::Dropped => {
            assert!(!rsp.is_empty(), "{want}");
            let answered = rsp.iter().all(|r| r.1 == RSP_ERROR || r.1 == RSP_NULL);
            assert!(answered, "{want}: {rsp:?}");
            assert_eq!(queued, 0, "{want}");
        }
        Outcome::Fatal => {
            assert!(raw.nb.is_disabled(), "{want}");
            assert_eq!((rsp.len(), queued), (0, 0), "{want}");
            // Nothing moves any more, not even a good packet.
            raw.send(&tcp_frame(b"later", ACK), &[], 0, &[]);
            raw.publish_tx();
            assert_eq!((raw.tx_responses().len(), raw.nb.take_tx().len()), (0, 0));
        }
        Outcome::Delivered => {
            let answered = rsp.iter().all(|r| r.1 != RSP_ERROR);
            assert!(!rsp.is_empty() && answered, "{want}: {rsp:?}");
            assert_eq!(queued, 1, "{want}");
            assert!(!raw.nb.is_disabled(), "{want}");
        }
    }
    raw.finish();
}

/// [`bad_tx_on`] a backend offering what Linux 6.1 offers.
fn bad_tx(want: &str, outcome: Outcome, send: impl FnOnce(&mut Raw)) {
    bad_tx_on(NetbackFeatures::default(), want, outcome, send);
}

/// A 3054-byte TCP frame.
fn f3k() -> Vec<u8> {
    tcp_frame(&payload(3000), ACK)
}

#[test]
fn every_tx_condition_linux_refuses_is_recorded() {
    use Outcome::*;
    bad_tx("runs past req_prod", Fatal, |r| {
        let f = f3k();
        r.tx_req(&f[..1000], 0, TXF_MORE_DATA, f.len() as u16);
    });
    bad_tx("missing extra info", Fatal, |r| {
        let f = f3k();
        r.tx_req(&f, 0, BLANK | TXF_EXTRA_INFO, f.len() as u16);
    });
    bad_tx("more than 18 following", Dropped, |r| {
        r.send(&f3k(), &[100; 19], 0, &[]);
    });
    bad_tx("more than 20 following", Fatal, |r| {
        r.send(&f3k(), &[40; 21], 0, &[]);
    });
    bad_tx("tx slot id 1 crosses its page", Fatal, |r| {
        let f = f3k();
        r.tx_req(&f[..1000], 0, TXF_MORE_DATA, f.len() as u16);
        r.tx_req(&f[1000..1096], 4000, 0, 2000);
    });
    bad_tx("first tx slot id 0 crosses its page", Fatal, |r| {
        let f = f3k();
        r.tx_req(&f[..96], 4000, 0, f.len() as u16);
    });
    bad_tx("fewer than an Ethernet header", Dropped, |r| {
        r.send(&f3k(), &[10], 0, &[]);
    });
    bad_tx("zero-size following", Delivered, |r| {
        let f = f3k();
        r.tx_req(&f, 0, TXF_MORE_DATA, f.len() as u16);
        r.tx_req(&[], 0, 0, 0);
    });
    bad_tx("GSO size 0", Fatal, |r| {
        r.send(&f3k(), &[], BLANK, &[gso(0, 1, 0)]);
    });
    bad_tx("bad GSO type 3", Fatal, |r| {
        r.send(&f3k(), &[], BLANK, &[gso(1448, 3, 0)]);
    });
    bad_tx("invalid extra type 0", Fatal, |r| {
        r.send(&f3k(), &[], BLANK, &[[0; 8]]);
    });
    bad_tx("invalid extra type 6", Fatal, |r| {
        r.send(&f3k(), &[], BLANK, &[[6, 0, 0, 0, 0, 0, 0, 0]]);
    });
    bad_tx("add up past the first request's size 4464", Dropped, |r| {
        // 70000 bytes: the first request's size wraps to 4464.
        let f = tcp_frame(&payload(70_000 - 54), ACK);
        let mut cuts = vec![3000];
        cuts.extend(std::iter::repeat_n(4096, 16));
        r.send(&f, &cuts, 0, &[]);
    });
    bad_tx("impossible number", Fatal, |r| r.tx_pvt += 257);
    bad_tx("without csum_blank", Delivered, |r| {
        r.send(&f3k(), &[1000], 0, &[gso(1448, 1, 0)]);
    });
    bad_tx("wrong pseudo-header seed", Delivered, |r| {
        let mut f = f3k();
        f[50] ^= 0x10;
        r.send(&f, &[], BLANK, &[]);
    });
    bad_tx("cannot segment", Delivered, |r| {
        let f = tcp_frame(&payload(1000), ACK);
        r.send(&f, &[], BLANK, &[gso(1448, 1, 0)]);
    });
    let linux = NetbackFeatures::default();
    let no_sg = NetbackFeatures { sg: false, ..linux };
    bad_tx_on(no_sg, "without feature-sg", Delivered, |r| {
        r.send(&f3k(), &[1000], 0, &[]);
    });
    let no_gso = NetbackFeatures { gso_tcpv4: false, ..linux };
    bad_tx_on(no_gso, "without feature-gso-tcpv4", Delivered, |r| {
        r.send(&f3k(), &[1000], BLANK, &[gso(1448, 1, 0)]);
    });
    let no_csum = NetbackFeatures { csum_offload: false, ..linux };
    bad_tx_on(no_csum, "despite feature-no-csum-offload", Delivered, |r| {
        r.send(&f3k(), &[], BLANK, &[]);
    });
}

#[test]
fn segments_verify_and_carry_the_whole_payload() {
    let mut raw = Raw::full();
    let data = payload(10_000);
    let frame = tcp_frame(&data, ACK | PSH | FIN | CWR);
    raw.send(&frame, &[2000, 4096], BLANK, &[gso(1448, 1, 0)]);
    let small = tcp_frame(b"hello", ACK);
    raw.send(&small, &[], BLANK, &[]);
    raw.publish_tx();
    let packets = raw.nb.take_tx_packets();
    assert_eq!(packets.len(), 2);
    assert!(raw.errors().is_empty(), "{:?}", raw.errors());

    let segs = packets[0].segment();
    assert_eq!(segs.len(), 7, "ceil(10000 / 1448)");
    let mut joined = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        let (id, seq, flags, p) = check_segment(s);
        assert_eq!(id, 0x1234 + i as u16);
        assert_eq!(seq, 1_000_000 + 1448 * i as u32);
        let last = i + 1 == segs.len();
        assert_eq!(flags & (PSH | FIN) != 0, last, "segment {i} flags {flags:#x}");
        assert_eq!(flags & CWR != 0, i == 0, "segment {i} flags {flags:#x}");
        assert_eq!(flags & ACK, ACK);
        assert_eq!(p.len(), if last { 10_000 - 6 * 1448 } else { 1448 });
        assert_eq!(s[..14], frame[..14], "Ethernet header copied");
        joined.extend_from_slice(&p);
    }
    assert!(joined == data);

    // Not GSO: the checksum is completed, the frame otherwise unchanged.
    let out = packets[1].segment();
    assert_eq!(out.len(), 1);
    assert_eq!(check_segment(&out[0]).3, b"hello");
    assert_eq!(out[0][..50], small[..50]);
    assert_ne!(out[0][50..52], small[50..52]);

    // What Linux drops in software GSO gives nothing.
    let one_mss = TxPacket { data: tcp_frame(&payload(1448), ACK), ..packets[0].clone() };
    assert!(one_mss.segment().is_empty());
    let v6 = TxPacket { gso: Some(TxGso { size: 1448, kind: 2 }), ..packets[0].clone() };
    assert!(v6.segment().is_empty());
    raw.finish();
}

#[test]
fn sixty_kib_gso_rx_packet_takes_15_data_slots_and_an_extra() {
    let mut raw = Raw::full();
    raw.post_rx(20);
    let data: Vec<u8> = (0..60 * 1024).map(|i| (i % 251) as u8).collect();
    raw.nb.inject_rx_packet(RxPacket { data: data.clone(), csum_blank: true, data_validated: false, gso_size: Some(1448) });
    let before = raw.nb.stats().notifications_sent;
    raw.nb.step();
    assert_eq!(raw.nb.stats().notifications_sent, before + 1);
    let rsp = raw.rx_responses();
    assert_eq!(rsp.len(), 16);
    let first = RXF_CSUM_BLANK | RXF_DATA_VALIDATED | RXF_EXTRA_INFO | RXF_MORE_DATA;
    assert_eq!(rsp[0].flags(), first);
    assert_eq!(rsp[1].raw, gso(1448, 1, 0), "GSO extra in the second slot");
    let mut got = Vec::new();
    for (i, r) in rsp.iter().enumerate().filter(|(i, _)| *i != 1) {
        assert_eq!((r.id(), r.offset(), r.status()), (i as u16, 0, 4096), "slot {i}");
        if i > 1 {
            let more = if i < 15 { RXF_MORE_DATA } else { 0 };
            assert_eq!(r.flags(), more, "slot {i}");
        }
        got.extend_from_slice(&r.data);
    }
    assert!(got == data);
    assert_eq!(raw.nb.stats().rx_delivered, 1);
    assert!(raw.errors().is_empty(), "{:?}", raw.errors());
    raw.finish();
}

#[test]
fn rx_waits_until_the_whole_packet_has_requests() {
    let mut raw = Raw::full();
    raw.post_rx(10);
    let big = RxPacket { data: payload(20_000), csum_blank: true, data_validated: true, gso_size: Some(1448) };
    raw.nb.inject_rx_packet(big.clone());
    raw.nb.inject_rx(payload(60));
    raw.nb.step();
    // 5 data slots and the extra; 10 requests suffice.
    assert_eq!(raw.rx_responses().len(), 7);
    assert_eq!(raw.nb.rx_backlog(), 0);

    // 3 requests left, 6 needed: nothing is published, req_event armed.
    raw.nb.inject_rx_packet(big);
    raw.nb.inject_rx(payload(60));
    raw.nb.step();
    assert!(raw.rx_responses().is_empty());
    assert_eq!(raw.rx.read_u32(REQ_EVENT), raw.rx_pvt + 1);
    raw.post_rx(2);
    assert!(raw.rx_responses().is_empty(), "5 of 6");
    assert_eq!(raw.rx.read_u32(REQ_EVENT), raw.rx_pvt + 1);
    raw.post_rx(1);
    let rsp = raw.rx_responses();
    assert_eq!(rsp.len(), 6, "the big one; the small one waits again");
    assert_eq!(raw.nb.rx_backlog(), 1);
    raw.post_rx(1);
    let rsp = raw.rx_responses();
    assert_eq!((rsp.len(), rsp[0].status(), rsp[0].flags()), (1, 60, 0));
    assert!(raw.errors().is_empty(), "{:?}", raw.errors());
    raw.finish();
}

#[test]
fn rx_packets_the_frontend_did_not_negotiate_are_test_errors() {
    let mut raw = Raw::plain();
    raw.post_rx(8);
    let blank = RxPacket { data: payload(100), csum_blank: true, data_validated: true, gso_size: None };
    let cases = [
        (RxPacket::plain(payload(5000)), "no feature-sg"),
        (RxPacket { gso_size: Some(1448), ..blank.clone() }, "lacks feature-gso-tcpv4"),
        (blank, "feature-no-csum-offload"),
        (RxPacket::plain(Vec::new()), "0 bytes"),
    ];
    for (p, want) in cases {
        let n = raw.errors().len();
        raw.nb.inject_rx_packet(p);
        raw.nb.step();
        assert!(raw.rx_responses().is_empty(), "{want}: dropped");
        assert_eq!(raw.errors().len(), n + 1);
        assert!(raw.errors()[n].contains(want), "{:?}", raw.errors()[n]);
    }
    // A plain frame still arrives.
    raw.nb.inject_rx(payload(100));
    raw.nb.step();
    assert_eq!(raw.rx_responses()[0].data[..100], payload(100)[..]);
    raw.finish();
}

fn gso_packet(len: usize) -> RxPacket {
    RxPacket { data: payload(len), csum_blank: true, data_validated: true, gso_size: Some(1448) }
}

#[test]
fn hostile_chain_never_ends() {
    let mut raw = Raw::plain();
    raw.post_rx(30);
    raw.nb.push_fault(NetbackFault::RxChainNeverEnds(20));
    raw.nb.inject_rx(payload(5000));
    raw.nb.inject_rx(payload(60));
    assert_eq!(raw.nb.pending_faults(), 1);
    raw.nb.step();
    let rsp = raw.rx_responses();
    assert_eq!(rsp.len(), 20, "the next packet is not in this push");
    assert!(rsp.iter().all(|r| r.flags() == RXF_MORE_DATA), "{rsp:?}");
    let status: Vec<_> = rsp.iter().map(|r| r.status()).collect();
    assert_eq!(status[..3], [4096, 904, 4096]);
    assert!(status[2..].iter().all(|&s| s == 4096));
    assert_eq!(rsp[1].data[..904], payload(5000)[4096..]);
    assert_eq!(raw.nb.pending_faults(), 0);
    raw.nb.step();
    let rsp = raw.rx_responses();
    assert_eq!((rsp.len(), rsp[0].flags(), rsp[0].status()), (1, 0, 60));
    assert!(raw.errors().is_empty(), "{:?}", raw.errors());
    raw.finish();
}

#[test]
fn hostile_more_data_on_last() {
    let mut raw = Raw::full();
    raw.post_rx(8);
    raw.nb.push_fault(NetbackFault::RxMoreDataOnLast);
    raw.nb.inject_rx_packet(gso_packet(5000));
    raw.nb.inject_rx(payload(60));
    raw.nb.step();
    let rsp = raw.rx_responses();
    assert_eq!(rsp.len(), 3);
    let first = RXF_CSUM_BLANK | RXF_DATA_VALIDATED | RXF_EXTRA_INFO | RXF_MORE_DATA;
    assert_eq!(rsp[0].flags(), first);
    assert_eq!(rsp[1].raw, gso(1448, 1, 0));
    assert_eq!((rsp[2].flags(), rsp[2].status()), (RXF_MORE_DATA, 904));
    raw.nb.step();
    assert_eq!(raw.rx_responses().len(), 1);
    raw.finish();
}

#[test]
fn hostile_gso_extras() {
    let mut raw = Raw::plain();
    raw.post_rx(64);
    let cases = [
        (NetbackFault::RxGsoSize(0), gso(0, 1, 0)),
        (NetbackFault::RxGsoSize(60_000), gso(60_000, 1, 0)),
        (NetbackFault::RxGsoType(2), gso(1448, 2, 0)),
        (NetbackFault::RxGsoType(0xff), gso(1448, 0xff, 0)),
    ];
    for (fault, extra) in cases {
        raw.nb.push_fault(fault);
        raw.nb.inject_rx_packet(gso_packet(3000));
        raw.nb.step();
        let rsp = raw.rx_responses();
        assert_eq!(rsp.len(), 2, "{fault:?}");
        assert_eq!(rsp[0].flags() & RXF_EXTRA_INFO, RXF_EXTRA_INFO, "{fault:?}");
        assert_eq!(rsp[1].raw, extra, "{fault:?}");
    }
    // A plain packet gains an extra (size 0 unless the fault sets it).
    raw.nb.push_fault(NetbackFault::RxGsoType(1));
    raw.nb.inject_rx(payload(100));
    raw.nb.step();
    let rsp = raw.rx_responses();
    assert_eq!((rsp[0].flags(), rsp[1].raw), (RXF_EXTRA_INFO, gso(0, 1, 0)));
    for kind in [0u8, 2, 3, 4, 5, 9] {
        raw.nb.push_fault(NetbackFault::RxExtraType(kind));
        raw.nb.inject_rx_packet(gso_packet(5000));
        raw.nb.step();
        let rsp = raw.rx_responses();
        assert_eq!(rsp.len(), 3, "type {kind}");
        let mut want = gso(1448, 1, 0);
        want[0] = kind;
        assert_eq!(rsp[1].raw, want, "type {kind}");
        assert_eq!(rsp[2].flags(), 0, "type {kind}: last data slot");
    }
    assert!(raw.errors().is_empty(), "{:?}", raw.errors());
    raw.finish();
}

#[test]
fn hostile_extra_chain_never_ends() {
    let mut raw = Raw::full();
    raw.post_rx(10);
    raw.nb.push_fault(NetbackFault::RxExtraMoreForever(4));
    raw.nb.inject_rx_packet(gso_packet(5000));
    raw.nb.step();
    let rsp = raw.rx_responses();
    assert_eq!(rsp.len(), 5);
    let first = RXF_CSUM_BLANK | RXF_DATA_VALIDATED | RXF_EXTRA_INFO | RXF_MORE_DATA;
    assert_eq!((rsp[0].flags(), rsp[0].status()), (first, 4096));
    for r in &rsp[1..] {
        assert_eq!(r.raw, gso(1448, 1, 1), "MORE set on every extra");
    }
    raw.finish();
}

#[test]
fn hostile_csum_blank_too_short_for_its_checksum() {
    let mut raw = Raw::plain();
    raw.post_rx(2);
    raw.nb.push_fault(NetbackFault::RxCsumBlankShort);
    let frame = tcp_frame(&payload(500), ACK);
    raw.nb.inject_rx(frame.clone());
    raw.nb.step();
    let rsp = raw.rx_responses();
    assert_eq!(rsp.len(), 1);
    assert_eq!(rsp[0].flags(), RXF_CSUM_BLANK | RXF_DATA_VALIDATED);
    assert_eq!(rsp[0].status(), 14 + 20 + 10);
    assert_eq!(rsp[0].data[..44], frame[..44]);
    raw.finish();
}

#[test]
fn hostile_middle_slots() {
    let mut raw = Raw::plain();
    raw.post_rx(8);
    raw.nb.push_fault(NetbackFault::RxSlotOutsidePage);
    raw.nb.inject_rx(payload(9000));
    raw.nb.step();
    let rsp = raw.rx_responses();
    let got: Vec<_> = rsp.iter().map(|r| (r.offset(), r.status(), r.flags())).collect();
    assert_eq!(got, [(0, 4096, RXF_MORE_DATA), (256, 4096, RXF_MORE_DATA), (0, 808, 0)]);

    raw.nb.push_fault(NetbackFault::RxStatusInChain(-1));
    raw.nb.inject_rx(payload(9000));
    raw.nb.step();
    let got: Vec<_> = raw.rx_responses().iter().map(|r| r.status()).collect();
    assert_eq!(got, [4096, -1, 808]);

    // No middle slot in a 2-slot packet: the test is wrong.
    raw.nb.push_fault(NetbackFault::RxStatusInChain(-3));
    raw.nb.inject_rx(payload(5000));
    raw.nb.step();
    assert!(raw.rx_responses().is_empty());
    let e = raw.errors();
    assert_eq!(e.len(), 1);
    assert!(e[0].contains("3 or more slots"), "{e:?}");
    raw.finish();
}
