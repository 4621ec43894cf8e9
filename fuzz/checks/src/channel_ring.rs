//! `channel_ring`: one channel's receive and send paths against a hostile
//! peer that controls its control page and ring completely.
//!
//! The peer is played by the harness on the simulated Xen: it allocates
//! and grants its control page and ring like a real peer, writes a header
//! the fuzzer may corrupt, and offers the channel through an offer string
//! that goes through `Offer::parse`. Our side is the real
//! [`channel::Channel`] (offer, attach, recv_into, send, arm_*, close).
//! Then every operation is one of the peer's writes (indices, record
//! headers, frames, states, events) or one of our calls, checked against
//! a model of the ring written from the layout's description:
//!
//! - nothing panics (an access outside a ring or page panics in xensim);
//! - a frame handed up is within `MIN_FRAME..=` the limit we announced, is
//!   the bytes of the peer's ring right behind its record header, and one
//!   call consumes at most one ring's worth;
//! - a violation is an error, and the next call reports it again instead
//!   of going on past it; closing then stops everything;
//! - send answers what the ring's arithmetic says (down, bad length,
//!   impossible consumer index, full, or the record where it belongs);
//! - after teardown nothing leaks (grants, mappings, ports, pages).

use arbitrary::Arbitrary;
use channel::layout::{self, State};
use channel::offer::Offer;
use channel::ring::{self, Violation};
use channel::{Channel, ChannelError, Config, SendError};
use xen_proto::iface::{DomId, EventChannels, GrantRef, GrantTable, RegionGrants, SharedPage, SharedRegion, PAGE_SIZE};
use xensim::{SimEvtchn, SimGnttab, SimPage, SimRegion, Xen};

/// Operations per input.
const MAX_OPS: usize = 96;

#[derive(Arbitrary, Debug)]
pub struct Input {
    pub setup: Setup,
    pub ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
pub struct Setup {
    /// Our ring: 1, 2 or 4 pages.
    pub our_pages_log2: u8,
    /// The peer's ring: 1, 2 or 4 pages.
    pub peer_pages_log2: u8,
    /// Our frame limit: index into [`OUR_FRAMES`].
    pub our_frame: u8,
    /// The peer's `frame=` (taken modulo the valid range).
    pub peer_frame: u32,
    pub polling: bool,
    /// We are dom2 and the peer dom1 (we bind its port), else the reverse.
    pub we_are_higher: bool,
    /// What the peer's control page says besides the truth.
    pub header: HeaderLie,
    /// What the peer puts in its grant-ref table.
    pub grefs: GrefMode,
    /// The peer's state at attach time.
    pub peer_state: u32,
    /// The event-channel port the peer names (None: its real one).
    pub bogus_port: Option<u32>,
    /// The peer maps our pages (so our close must wait for it).
    pub peer_maps_us: bool,
}

const OUR_FRAMES: [usize; 4] = [ring::ETH_FRAME, 1600, 4000, 9014];

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum HeaderLie {
    None,
    Magic(u32),
    Version(u32),
    Nonce(u32),
    RingPages(u32),
    /// The offer's version (the control page stays right).
    OfferVersion(u32),
    /// The offer's ring-pages (the control page stays right).
    OfferRingPages(u32),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum GrefMode {
    Real,
    /// Every ring page is the control page.
    AllControl,
    /// Ring page `index` is this raw ref.
    Raw {
        index: u8,
        gref: u32,
    },
    /// The ring pages in reverse order.
    Reversed,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    /// The peer appends a well-formed frame record (padding to the end of
    /// the ring first if needed) and maybe publishes its producer index.
    Produce {
        len: u16,
        fill: u8,
        publish: bool,
    },
    /// The peer writes a record header at ring offset `at * 8`.
    Header {
        at: u16,
        len: u32,
        kind: u32,
    },
    /// The peer writes a record header where we will read next.
    HeaderAtCons {
        len: u32,
        kind: u32,
    },
    /// The peer scribbles on its ring.
    Scribble {
        at: u16,
        bytes: Vec<u8>,
    },
    /// The peer sets a field of its control page.
    Peer {
        field: PeerField,
        value: u32,
    },
    /// The peer moves its producer index by `delta`.
    AdvanceProd {
        delta: i32,
    },
    /// The peer consumes `delta` bytes of our ring (any value).
    ConsumeOurs {
        delta: u32,
    },
    /// The peer consumes everything we published.
    ConsumeAll,
    Recv,
    /// Receive until nothing is there (bounded).
    Drain,
    Send {
        len: u16,
        fill: u8,
    },
    ArmRx,
    ArmTxSpace {
        len: u16,
    },
    TakeEvent,
    PollPeer,
    CanSend {
        len: u16,
    },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum PeerField {
    TxProd,
    TxSpaceEvent,
    RxCons,
    RxDataEvent,
    State,
    Magic,
    RingPages,
    Nonce,
}

impl PeerField {
    fn offset(self) -> usize {
        match self {
            PeerField::TxProd => layout::TX_PROD,
            PeerField::TxSpaceEvent => layout::TX_SPACE_EVENT,
            PeerField::RxCons => layout::RX_CONS,
            PeerField::RxDataEvent => layout::RX_DATA_EVENT,
            PeerField::State => layout::STATE_AT,
            PeerField::Magic => layout::MAGIC_AT,
            PeerField::RingPages => layout::RING_PAGES_AT,
            PeerField::Nonce => layout::NONCE_AT,
        }
    }
}

type Chan = Channel<SimGnttab, SimEvtchn>;

/// The hostile peer's own pages and what it published.
struct Peer {
    gnt: SimGnttab,
    evt: SimEvtchn,
    control: SimPage,
    control_ref: GrantRef,
    ring: SimRegion,
    ring_refs: Vec<GrantRef>,
    port: Option<u32>,
    size: usize,
    /// Where the peer will append its next record (its own idea).
    prod: u32,
    /// Our pages the peer mapped.
    maps: Vec<xensim::SimMapping>,
    /// The ring as we mapped it: the pages its grant-ref table named at
    /// attach time (not the peer's ring if the table lied).
    view: Vec<SimPage>,
}

impl Peer {
    /// Bytes of the ring as we see it.
    fn view_read(&self, at: usize, out: &mut [u8]) {
        for (i, b) in out.iter_mut().enumerate() {
            let o = at + i;
            let mut one = [0u8];
            self.view[o / PAGE_SIZE].read_bytes(o % PAGE_SIZE, &mut one);
            *b = one[0];
        }
    }
    fn set(&self, field: PeerField, value: u32) {
        self.control.write_u32(field.offset(), value);
    }
    fn get(&self, field: PeerField) -> u32 {
        self.control.read_u32(field.offset())
    }
}

/// Our side: the channel and backdoor views of our own pages.
struct Us {
    chan: Chan,
    id: DomId,
    control: SimPage,
    ring: Vec<SimPage>,
    size: usize,
    max_frame: usize,
    polling: bool,
    /// The peer's consumer index as the channel last used it: it sends
    /// against this and reads the peer's again only when a frame does not
    /// fit.
    cons_seen: u32,
}

impl Us {
    fn rx_cons(&self) -> u32 {
        self.control.read_u32(layout::RX_CONS)
    }
    fn tx_prod(&self) -> u32 {
        self.control.read_u32(layout::TX_PROD)
    }
    fn ring_read(&self, at: usize, out: &mut [u8]) {
        for (i, b) in out.iter_mut().enumerate() {
            let o = at + i;
            let mut one = [0u8];
            self.ring[o / PAGE_SIZE].read_bytes(o % PAGE_SIZE, &mut one);
            *b = one[0];
        }
    }
}

fn pages(log2: u8) -> u32 {
    1 << (log2 % 3)
}

/// Runs one input.
pub fn check(data: &[u8]) {
    let Some(input) = crate::from_bytes::<Input>(data) else { return };
    run(input);
}

fn run(input: Input) {
    let s = &input.setup;
    let xen = Xen::new();
    let (us_id, peer_id): (DomId, DomId) = if s.we_are_higher { (2, 1) } else { (1, 2) };
    // Created in domid order, so both exist before either acts.
    let d1 = xen.create_domain(1);
    let d2 = xen.create_domain(2);
    let (our_dom, peer_dom) = if s.we_are_higher { (d2, d1) } else { (d1, d2) };

    // Our channel first: its offer is what the peer would read.
    let mut our_pages = pages(s.our_pages_log2);
    let max_frame = OUR_FRAMES[usize::from(s.our_frame) % OUR_FRAMES.len()];
    while 2 * ring::record_len(max_frame) > our_pages as usize * PAGE_SIZE {
        our_pages *= 2;
    }
    let config = Config { ring_pages: our_pages, polling: s.polling, spin_ns: 0, max_frame };
    assert!(config.valid());
    let (chan, our_offer) =
        Channel::offer(our_dom.gnttab(), our_dom.evtchn(), us_id, peer_id, config, 7).expect("offer on a fresh domain");
    let control = xen.granted_page(us_id, our_offer.control_ref).expect("our control page is granted");
    let ring_refs: Vec<GrantRef> = (0..our_pages as usize).map(|i| control.read_u32(layout::GREFS_AT + 4 * i)).collect();
    let ring = ring_refs.iter().map(|&g| xen.granted_page(us_id, g).expect("our ring page is granted")).collect();
    let mut us =
        Us { chan, id: us_id, control, ring, size: our_pages as usize * PAGE_SIZE, max_frame, polling: s.polling, cons_seen: 0 };
    assert_eq!(our_offer.event_channel.is_some(), us_id < peer_id, "the lower domid names the port");

    // The peer: pages granted read-only to us, a header, an offer.
    let peer_pages = pages(s.peer_pages_log2);
    let mut pgnt = peer_dom.gnttab();
    let mut pevt = peer_dom.evtchn();
    let pring = pgnt.alloc_region(peer_pages as usize).expect("peer ring");
    let pring_refs: Vec<GrantRef> =
        (0..peer_pages as usize).map(|i| pgnt.grant_region_page(&pring, i, us_id, true).expect("grant")).collect();
    let pcontrol = pgnt.alloc_page().expect("peer control page");
    let pcontrol_ref = pgnt.grant(&pcontrol, us_id, true).expect("grant");
    let nonce = 0x5eed;
    layout::init(&pcontrol, peer_pages, nonce, &pring_refs);
    pcontrol.write_u32(layout::STATE_AT, s.peer_state % 4);
    let port = if peer_id < us_id { Some(pevt.alloc_unbound(us_id).expect("port")) } else { None };
    let mut peer = Peer {
        gnt: pgnt,
        evt: pevt,
        control: pcontrol,
        control_ref: pcontrol_ref,
        ring: pring,
        ring_refs: pring_refs,
        port,
        size: peer_pages as usize * PAGE_SIZE,
        prod: 0,
        maps: Vec::new(),
        view: Vec::new(),
    };
    match s.grefs {
        GrefMode::Real => {}
        GrefMode::AllControl => {
            for i in 0..peer_pages as usize {
                peer.control.write_u32(layout::GREFS_AT + 4 * i, peer.control_ref);
            }
        }
        GrefMode::Raw { index, gref } => {
            peer.control.write_u32(layout::GREFS_AT + 4 * (usize::from(index) % peer_pages as usize), gref);
        }
        GrefMode::Reversed => {
            for (i, &g) in peer.ring_refs.iter().rev().enumerate() {
                peer.control.write_u32(layout::GREFS_AT + 4 * i, g);
            }
        }
    }
    let (mut offer_version, mut offer_pages) = (layout::LAYOUT_VERSION, peer_pages);
    match s.header {
        HeaderLie::None => {}
        HeaderLie::Magic(v) => peer.set(PeerField::Magic, v),
        HeaderLie::Version(v) => peer.control.write_u32(layout::VERSION_AT, v),
        HeaderLie::Nonce(v) => peer.set(PeerField::Nonce, v),
        HeaderLie::RingPages(v) => peer.set(PeerField::RingPages, v),
        HeaderLie::OfferVersion(v) => offer_version = v,
        HeaderLie::OfferRingPages(v) => offer_pages = v,
    }
    if s.peer_maps_us {
        let mut g = peer.gnt.clone();
        peer.maps.push(g.map(us.id, our_offer.control_ref, true).expect("peer maps our control page"));
        for &r in &ring_refs {
            peer.maps.push(g.map(us.id, r, true).expect("peer maps our ring"));
        }
    }

    // The offer as the peer writes it, as our manager reads it.
    let port_word = match (s.bogus_port, peer.port) {
        (Some(p), _) => format!("{p}"),
        (None, Some(p)) => format!("{p}"),
        (None, None) => String::from("-"),
    };
    let frame = ring::ETH_FRAME + (s.peer_frame as usize) % (ring::MAX_CHANNEL_FRAME - ring::ETH_FRAME + 1);
    let text = format!(
        "version={offer_version} nonce={nonce} control-ref={} ring-pages={offer_pages} event-channel={port_word} frame={frame}",
        peer.control_ref
    );
    // What our attach will map as the peer's ring.
    peer.view = (0..peer_pages as usize)
        .filter_map(|i| xen.granted_page(peer_id, peer.control.read_u32(layout::GREFS_AT + 4 * i)))
        .collect();
    let attached = match Offer::parse(text.as_bytes()) {
        Ok(offer) => attach(&mut us, &peer, &offer, s),
        // Nothing the manager would attach to.
        Err(_) => false,
    };
    if attached {
        for op in input.ops.iter().take(MAX_OPS) {
            step(&mut us, &mut peer, op);
        }
    }
    teardown(&xen, us, peer);
}

/// Attaches and checks the outcome against what the peer wrote.
fn attach(us: &mut Us, peer: &Peer, offer: &Offer, s: &Setup) -> bool {
    let header = layout::read_header(&peer.control);
    let result = us.chan.attach(offer);
    if offer.version != layout::LAYOUT_VERSION {
        assert_eq!(result, Err(ChannelError::Version(offer.version)));
        return false;
    }
    let lie = if header.magic != layout::MAGIC {
        Some("bad magic")
    } else if header.version != layout::LAYOUT_VERSION {
        Some("version differs from its offer")
    } else if header.nonce != offer.nonce {
        Some("nonce differs from its offer")
    } else if header.ring_pages != offer.ring_pages || !layout::valid_ring_pages(header.ring_pages) {
        Some("ring size differs from its offer")
    } else {
        None
    };
    if let Some(why) = lie {
        assert_eq!(result, Err(ChannelError::BadPeer(why)));
        assert!(!us.chan.is_attached());
        return false;
    }
    match result {
        Ok(()) => {
            assert!(us.chan.is_attached());
            assert_eq!(us.chan.send_limit(), us.max_frame.min(offer.max_frame));
            assert_eq!(us.chan.is_up(), State::from_raw(s.peer_state % 4) == Some(State::Connected));
            // We say Connected in our own page.
            assert_eq!(us.control.read_u32(layout::STATE_AT), State::Connected.raw());
            true
        }
        // Refs that are not the peer's ring, or a port that is no port.
        Err(ChannelError::Xen(_)) => {
            let bad_refs = !matches!(s.grefs, GrefMode::Real | GrefMode::Reversed | GrefMode::AllControl);
            assert!(bad_refs || s.bogus_port.is_some(), "attach failed for a well-formed peer: {result:?}");
            assert!(!us.chan.is_attached());
            false
        }
        Err(ChannelError::NoPort) => {
            panic!("attach: NoPort although the offer names a port or we allocate it");
        }
        Err(e) => panic!("attach: unexpected {e:?}"),
    }
}

/// The outcome `send` must have, from the ring arithmetic.
fn expected_send(us: &Us, peer_cons: u32, len: usize) -> Result<(usize, Option<usize>), SendError> {
    if !us.chan.is_up() {
        return Err(SendError::Down);
    }
    if !(ring::MIN_FRAME..=us.chan.send_limit()).contains(&len) {
        return Err(SendError::BadLength);
    }
    let prod = us.tx_prod();
    let used = prod.wrapping_sub(peer_cons) as usize;
    if used > us.size || !used.is_multiple_of(8) {
        return Err(SendError::Violation);
    }
    let at = prod as usize % us.size;
    let tail = us.size - at;
    let record = ring::HEADER + len.div_ceil(8) * 8;
    let (record_at, pad, need) = if record <= tail { (at, None, record) } else { (0, Some(at), tail + record) };
    if need > us.size - used {
        return Err(SendError::Full);
    }
    Ok((record_at, pad))
}

fn pattern(len: usize, fill: u8) -> Vec<u8> {
    (0..len).map(|i| fill.wrapping_add(i as u8)).collect()
}

fn recv(us: &mut Us, peer: &Peer) -> Option<Result<bool, Violation>> {
    let before = us.rx_cons();
    let mut out = Vec::new();
    let r = us.chan.recv_into(&mut out);
    let after = us.rx_cons();
    let consumed = after.wrapping_sub(before) as usize;
    assert!(consumed <= peer.size, "one call consumed {consumed} bytes of a {}-byte ring", peer.size);
    assert_eq!(consumed % 8, 0);
    match r {
        Ok(true) => {
            let len = out.len();
            assert!((ring::MIN_FRAME..=us.max_frame).contains(&len), "frame of {len} bytes handed up (limit {})", us.max_frame);
            // The frame is the bytes right behind its record header, and
            // the record ends where the consumer index now stands.
            let record = ring::record_len(len);
            assert!(consumed >= record);
            let start = after.wrapping_sub(record as u32) as usize % peer.size;
            assert!(start + record <= peer.size, "a record wraps the ring");
            let mut want = vec![0u8; len];
            peer.view_read(start + ring::HEADER, &mut want);
            assert!(out == want, "frame differs from the ring's bytes");
        }
        Ok(false) => {}
        Err(v) => {
            // Nothing past the violation is read: asking again finds it
            // again (the peer did not move meanwhile).
            let again = us.chan.recv_into(&mut Vec::new());
            assert_eq!(again, Err(v), "a violation must stick");
            assert_eq!(us.rx_cons(), after);
            return Some(Err(v));
        }
    }
    Some(r)
}

fn step(us: &mut Us, peer: &mut Peer, op: &Op) {
    if us.chan.is_closed() {
        // The caller closed on a violation: nothing moves any more.
        // A channel closed on a violation keeps reporting it (and reads
        // nothing); any other closed channel reads nothing.
        let mut out = Vec::new();
        let expected = match us.chan.violation() {
            Some(v) => Err(v),
            None => Ok(false),
        };
        assert_eq!(us.chan.recv_into(&mut out), expected);
        assert!(out.is_empty());
        assert_eq!(us.chan.send(&[0u8; 60]), Err(SendError::Down));
        assert!(!us.chan.can_send(60));
        return;
    }
    match op {
        Op::Produce { len, fill, publish } => {
            let len = usize::from(*len) % (ring::MAX_CHANNEL_FRAME + 1);
            let record = ring::record_len(len);
            // A peer that set a crooked index goes on from the next slot.
            peer.prod = peer.prod.wrapping_add(7) & !7;
            let at = peer.prod as usize % peer.size;
            let tail = peer.size - at;
            if record > peer.size {
                return;
            }
            if record > tail {
                peer.ring.write_bytes(at, &ring::header(tail - ring::HEADER, ring::KIND_PAD));
                peer.prod = peer.prod.wrapping_add(tail as u32);
            }
            let at = peer.prod as usize % peer.size;
            peer.ring.write_bytes(at, &ring::header(len, ring::KIND_FRAME));
            peer.ring.write_bytes(at + ring::HEADER, &pattern(len, *fill));
            peer.prod = peer.prod.wrapping_add(record as u32);
            if *publish {
                peer.set(PeerField::TxProd, peer.prod);
            }
        }
        Op::Header { at, len, kind } => {
            let at = (usize::from(*at) * 8) % peer.size;
            peer.ring.write_bytes(at, &ring::header(*len as usize, *kind));
        }
        Op::HeaderAtCons { len, kind } => {
            let at = us.rx_cons() as usize % peer.size;
            peer.ring.write_bytes(at, &ring::header(*len as usize, *kind));
        }
        Op::Scribble { at, bytes } => {
            let at = usize::from(*at) % peer.size;
            let n = bytes.len().min(peer.size - at);
            peer.ring.write_bytes(at, &bytes[..n]);
        }
        Op::Peer { field, value } => {
            peer.set(*field, *value);
            if let PeerField::TxProd = field {
                peer.prod = *value;
            }
        }
        Op::AdvanceProd { delta } => {
            let v = peer.get(PeerField::TxProd).wrapping_add(*delta as u32);
            peer.set(PeerField::TxProd, v);
            peer.prod = v;
        }
        Op::ConsumeOurs { delta } => {
            let v = peer.get(PeerField::RxCons).wrapping_add(*delta);
            peer.set(PeerField::RxCons, v);
        }
        Op::ConsumeAll => peer.set(PeerField::RxCons, us.tx_prod()),
        Op::Recv => {
            if let Some(Err(_)) = recv(us, peer) {
                violated(us);
            }
        }
        Op::Drain => {
            // At most one frame per 24 bytes of ring, plus one call.
            for _ in 0..=peer.size / 24 + 1 {
                match recv(us, peer) {
                    Some(Ok(true)) => {}
                    Some(Err(_)) => {
                        violated(us);
                        break;
                    }
                    _ => break,
                }
            }
        }
        Op::Send { len, fill } => {
            let len = usize::from(*len) % (ring::MAX_CHANNEL_FRAME + 16);
            let frame = pattern(len, *fill);
            let (want, cons) = match expected_send(us, us.cons_seen, len) {
                Err(SendError::Full) => {
                    let fresh = peer.get(PeerField::RxCons);
                    (expected_send(us, fresh, len), fresh)
                }
                other => (other, us.cons_seen),
            };
            let before = us.tx_prod();
            let got = us.chan.send(&frame);
            match (want, got) {
                (Ok((record_at, pad)), Ok(())) => {
                    us.cons_seen = cons;
                    let after = us.tx_prod();
                    assert!(after.wrapping_sub(cons) as usize <= us.size, "published more than the ring holds");
                    let mut h = [0u8; ring::HEADER];
                    if let Some(pad_at) = pad {
                        us.ring_read(pad_at, &mut h);
                        assert_eq!(h, ring::header(us.size - pad_at - ring::HEADER, ring::KIND_PAD));
                    }
                    us.ring_read(record_at, &mut h);
                    assert_eq!(h, ring::header(len, ring::KIND_FRAME));
                    let mut body = vec![0u8; len];
                    us.ring_read(record_at + ring::HEADER, &mut body);
                    assert!(body == frame, "frame not in our ring as sent");
                    assert_eq!(after as usize % us.size, (record_at + ring::record_len(len)) % us.size);
                }
                (Err(w), Err(g)) => {
                    assert_eq!(w, g, "send of {len} bytes");
                    assert_eq!(us.tx_prod(), before, "a failed send published something");
                    if g == SendError::Violation {
                        violated(us);
                    }
                }
                (w, g) => panic!("send of {len} bytes: expected {w:?}, got {g:?}"),
            }
        }
        Op::ArmRx => {
            let r = us.chan.arm_rx();
            if us.chan.is_attached() && !us.polling {
                assert_eq!(us.control.read_u32(layout::RX_DATA_EVENT), us.rx_cons().wrapping_add(1));
                assert_eq!(r, peer.get(PeerField::TxProd) != us.rx_cons());
            } else {
                assert!(!r);
            }
        }
        Op::ArmTxSpace { len } => {
            let _ = us.chan.arm_tx_space(usize::from(*len));
        }
        Op::TakeEvent => {
            let _ = us.chan.take_event();
        }
        Op::PollPeer => {
            let raw = peer.get(PeerField::State);
            assert_eq!(us.chan.poll_peer(), State::from_raw(raw));
        }
        Op::CanSend { len } => {
            let len = usize::from(*len);
            let want = expected_send(us, peer.get(PeerField::RxCons), len).is_ok();
            assert_eq!(us.chan.can_send(len), want, "can_send({len})");
        }
    }
}

/// What the manager does on a violation: close at once.
fn violated(us: &mut Us) {
    us.chan.close();
    assert!(us.chan.is_closed());
    assert_eq!(us.control.read_u32(layout::STATE_AT), State::Closed.raw());
}

/// Closes both sides and checks that nothing is left behind.
fn teardown(xen: &Xen, mut us: Us, mut peer: Peer) {
    let mapped_by_peer = !peer.maps.is_empty();
    let done = us.chan.close();
    assert_eq!(done, !mapped_by_peer, "close must wait exactly while the peer maps our pages");
    for m in peer.maps.drain(..) {
        peer.gnt.unmap(m).expect("peer unmaps");
    }
    assert!(us.chan.close(), "close after the peer let go");
    // Our side unmapped the peer's pages: its revocations succeed.
    for g in peer.ring_refs.iter().copied().chain([peer.control_ref]) {
        peer.gnt.revoke(g).expect("we still map the peer's pages");
    }
    peer.gnt.free_region(peer.ring);
    peer.gnt.free_page(peer.control);
    if let Some(p) = peer.port {
        peer.evt.close(p).expect("peer's port");
    }
    drop(us);
    let leaks = xen.leaks();
    assert!(leaks.is_empty(), "leaks: {leaks:#?}");
}
