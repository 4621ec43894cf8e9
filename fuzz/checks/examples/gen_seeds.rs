//! Writes the hand-made seed inputs of every target into
//! `fuzz/seeds/<target>/`: valid examples (a frame each way on a channel,
//! a GSO packet through netfront, a xenstore conversation, well-formed
//! offers, adverts and lists, a group of guests with a forger among them).
//!
//! The inputs are `arbitrary`-encoded structures, so they are written here
//! with the encoding `arbitrary` 1.5 reads (integers little endian, a
//! bool as a byte's low bit, an enum variant as a u32 scaled to the
//! variant count, each element of a `Vec` after a continue byte), and each
//! is checked by decoding it and looking for what it should contain.
//!
//! `cargo run -p fuzz-checks --example gen_seeds` (deterministic: running
//! it again writes the same files).

use std::path::Path;

/// A target's seeds: name, bytes, and what the decoded input must show.
type Seeds = Vec<(&'static str, Vec<u8>, Vec<&'static str>)>;

/// Bytes in `arbitrary`'s encoding.
#[derive(Default)]
struct E(Vec<u8>);

impl E {
    fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    fn u16(mut self, v: u16) -> Self {
        self.0.extend(v.to_le_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend(v.to_le_bytes());
        self
    }
    fn i16(self, v: i16) -> Self {
        self.u16(v as u16)
    }
    fn i8(self, v: i8) -> Self {
        self.u8(v as u8)
    }
    fn i32(self, v: i32) -> Self {
        self.u32(v as u32)
    }
    fn bool(self, v: bool) -> Self {
        self.u8(u8::from(v))
    }
    /// Variant `i` of an enum of `n` variants.
    fn var(self, i: u32, n: u32) -> Self {
        let v = (u64::from(i) << 32).div_ceil(u64::from(n));
        self.u32(v as u32)
    }
    fn none(self) -> Self {
        self.u8(0)
    }
    fn some(self) -> Self {
        self.u8(1)
    }
    /// The next element of a `Vec`.
    fn item(self) -> Self {
        self.u8(1)
    }
    /// The end of a `Vec` that is not the last field.
    fn end(self) -> Self {
        self.u8(0)
    }
    /// A `Vec<u8>` that is not the last field.
    fn bytes(mut self, b: &[u8]) -> Self {
        for &x in b {
            self.0.push(1);
            self.0.push(x);
        }
        self.0.push(0);
        self
    }
    fn array6(mut self, b: [u8; 6]) -> Self {
        self.0.extend(b);
        self
    }
    fn array4(mut self, b: [u8; 4]) -> Self {
        self.0.extend(b);
        self
    }
    /// A `Vec<u8>` that is the last field (no end marker).
    fn bytes_rest(mut self, b: &[u8]) -> Self {
        for &x in b {
            self.0.push(1);
            self.0.push(x);
        }
        self
    }
}

mod ch {
    //! channel_ring: Op has 16 variants, PeerField 8, HeaderLie 7, GrefMode 4.
    use super::E;
    pub const OPS: u32 = 16;
    pub fn setup(e: E, higher: bool, state: u32, frame_idx: u8, maps: bool, polling: bool) -> E {
        // Pages (log2): one each, four for jumbo frames.
        let pages = if frame_idx == 3 { 2 } else { 0 };
        e.u8(pages) // our_pages_log2
            .u8(pages) // peer_pages_log2
            .u8(frame_idx)
            .u32(9014 - 1514) // peer_frame: 9014
            .bool(polling)
            .bool(higher)
            .var(0, 7) // header: None
            .var(0, 4) // grefs: Real
            .u32(state)
            .none() // bogus_port
            .bool(maps)
    }
    pub fn produce(e: E, len: u16, fill: u8, publish: bool) -> E {
        e.item().var(0, OPS).u16(len).u8(fill).bool(publish)
    }
    pub fn op(e: E, i: u32) -> E {
        e.item().var(i, OPS)
    }
    pub fn send(e: E, len: u16, fill: u8) -> E {
        e.item().var(10, OPS).u16(len).u8(fill)
    }
}

fn channel_ring() -> Seeds {
    use ch::*;
    let mut seeds = Vec::new();
    // A frame each way, then a full ring and a drain.
    let mut e = setup(E::default(), false, 1, 0, false, false);
    e = produce(e, 60, 1, true);
    e = op(e, 8); // Recv
    e = send(e, 100, 2);
    e = op(e, 7); // ConsumeAll
    for i in 0..2 {
        e = produce(e, 1514, i, true);
    }
    e = op(e, 9); // Drain
    e = op(e, 11); // ArmRx
    e = op(e, 14); // PollPeer
    e = e.item().var(15, OPS).u16(1514); // CanSend
    e = e.item().var(12, OPS).u16(1514); // ArmTxSpace
    e = op(e, 13); // TakeEvent
    seeds.push(("frames-both-ways", e.0, vec!["Produce { len: 60", "Recv", "Send { len: 100", "Drain", "CanSend"]));
    // The higher domid binds; the peer connects late; polling.
    let mut e = setup(E::default(), true, 0, 1, false, true);
    e = op(e, 14);
    e = e.item().var(4, OPS).var(4, 8).u32(1); // Peer { State, 1 }
    e = op(e, 14);
    e = send(e, 1600, 3);
    e = produce(e, 1600, 4, true);
    e = op(e, 8);
    e = op(e, 11);
    seeds.push((
        "higher-domid-late-peer",
        e.0,
        vec!["we_are_higher: true", "Peer { field: State, value: 1 }", "Send { len: 1600"],
    ));
    // Wrap-around with pads: big frames, drained in between.
    let mut e = setup(E::default(), false, 1, 0, false, false);
    for i in 0..7 {
        e = produce(e, 1000 + 100 * i, i as u8, true);
        e = op(e, 9);
        e = send(e, 1400 - 100 * i, i as u8);
        e = op(e, 7);
    }
    seeds.push(("wrap-around", e.0, vec!["Produce { len: 1600", "Send { len: 800"]));
    // Hostile: a runt record where we read next, then a producer index
    // beyond the ring; a consumer index from the future.
    let mut e = setup(E::default(), false, 1, 0, false, false);
    e = produce(e, 60, 1, true);
    e = e.item().var(2, OPS).u32(13).u32(1); // HeaderAtCons { 13, FRAME }
    e = op(e, 8);
    e = op(e, 8);
    seeds.push(("runt-record", e.0, vec!["HeaderAtCons { len: 13, kind: 1 }"]));
    let mut e = setup(E::default(), false, 1, 0, false, false);
    e = e.item().var(5, OPS).i32(4096 + 8); // AdvanceProd
    e = op(e, 8);
    e = e.item().var(6, OPS).u32(64); // ConsumeOurs 64
    e = send(e, 60, 0);
    seeds.push(("bad-indices", e.0, vec!["AdvanceProd { delta: 4104 }", "ConsumeOurs { delta: 64 }"]));
    // A peer whose control page lies about its nonce; one that maps us
    // and sends large frames.
    let e = E::default().u8(0).u8(0).u8(0).u32(0).bool(false).bool(false).var(3, 7).u32(999).var(0, 4).u32(1).none().bool(false);
    seeds.push(("lying-nonce", e.0, vec!["Nonce(999)"]));
    let mut e = setup(E::default(), false, 1, 3, true, false);
    e = produce(e, 9014, 7, true);
    e = op(e, 8);
    e = send(e, 9014, 8);
    e = op(e, 7);
    seeds.push(("jumbo-peer-maps-us", e.0, vec!["peer_maps_us: true", "Produce { len: 9014"]));
    seeds
}

mod nf {
    //! netif_responses: Op 15 variants, RxSlot 3, IdMode 2, L4 3.
    use super::E;
    pub const OPS: u32 = 15;
    pub const RECEIVE: u32 = 12;
    pub const POLL: u32 = 13;
    pub const HANDLE_EVENT: u32 = 14;
    pub fn setup(e: E, all: bool) -> E {
        e.bool(all).bool(all).bool(all).bool(all).bool(all).bool(false).u8(0).u8(0)
    }
    pub fn rx_linux(e: E, len: u16, l4: u32, blank: bool, validated: bool, gso: Option<u16>) -> E {
        let e = e.item().var(0, OPS).u16(len).var(l4, 3).bool(blank).bool(validated);
        let e = match gso {
            Some(m) => e.some().u16(m),
            None => e.none(),
        };
        e.bool(true)
    }
    pub fn op(e: E, i: u32) -> E {
        e.item().var(i, OPS)
    }
    pub fn send(e: E, len: u16, l4: u32, csum: bool, gso: Option<u16>) -> E {
        let e = e.item().var(11, OPS).u16(len).var(l4, 3).bool(csum);
        let e = match gso {
            Some(m) => e.some().u16(m),
            None => e.none(),
        };
        e.u8(0x33)
    }
    pub fn answer_all(e: E, status: i16) -> E {
        e.item().var(3, OPS).item().var(5, OPS).i16(status).bool(false).item().var(6, OPS).i8(0)
    }
}

fn netif_responses() -> Seeds {
    use nf::*;
    let mut seeds = Vec::new();
    let mut e = setup(E::default(), true);
    e = rx_linux(e, 60, 0, false, false, None);
    e = op(e, POLL);
    e = op(e, RECEIVE);
    e = send(e, 1514, 0, true, None);
    e = answer_all(e, 0);
    e = op(e, HANDLE_EVENT);
    seeds.push(("one-frame-each-way", e.0, vec!["RxLinux { len: 60", "Receive", "Send { len: 1514", "TxRespondAll"]));
    let mut e = setup(E::default(), true);
    e = rx_linux(e, 20000, 0, true, true, Some(1448));
    e = op(e, HANDLE_EVENT);
    e = op(e, RECEIVE);
    e = rx_linux(e, 3000, 1, true, true, None);
    e = op(e, POLL);
    e = op(e, RECEIVE);
    e = send(e, 30000, 0, true, Some(1448));
    e = send(e, 600, 1, true, None);
    e = answer_all(e, 0);
    e = op(e, POLL);
    seeds.push(("gso-and-csum", e.0, vec!["gso: Some(1448)", "Send { len: 30000"]));
    // Without offloads; responses with a wrong id, an error status and a
    // stray extra slot; a producer index one too far.
    let mut e = setup(E::default(), false);
    e = e
        .item()
        .var(1, OPS) // RxSlots
        .item()
        .var(0, 3) // Data
        .var(1, 2)
        .u16(77) // id 77
        .u16(0)
        .u16(0)
        .u16(100)
        .u8(1)
        .item()
        .var(1, 3) // Status
        .var(0, 2)
        .u16(0)
        .u16(0)
        .i16(-1)
        .item()
        .var(2, 3) // Extra
        .u8(1)
        .u8(0)
        .u16(1448)
        .u8(1)
        .end()
        .bool(true);
    e = op(e, POLL);
    e = op(e, RECEIVE);
    e = e.item().var(2, OPS).i8(1); // RxPublish skew 1
    e = op(e, POLL);
    seeds.push(("bad-rx-responses", e.0, vec!["Raw(77)", "Status { id: Right", "Extra { kind: 1", "RxPublish { skew: 1 }"]));
    // A backend that keeps a tx buffer mapped, answers it twice, then
    // lets go.
    let mut e = setup(E::default(), true);
    e = send(e, 200, 1, false, None);
    e = op(e, 3); // TxConsume
    e = e.item().var(7, OPS).bool(true).u8(0); // Hold tx
    e = e.item().var(4, OPS).u8(0).var(0, 2).i16(0); // TxRespond
    e = e.item().var(4, OPS).u8(0).var(1, 2).u16(0).i16(0);
    e = e.item().var(6, OPS).i8(0);
    e = op(e, POLL);
    e = op(e, 8); // Release
    e = op(e, POLL);
    seeds.push(("held-and-duplicate", e.0, vec!["Hold { tx: true", "TxRespond { which: 0, id: Right", "Release"]));
    seeds
}

mod xs {
    //! xenstore_replies: Input 2, ClientOp 16, Path 4, Action 11, ErrName 6.
    use super::E;
    pub const OPS: u32 = 16;
    pub const ACTS: u32 = 11;
    pub fn op(e: E, i: u32, path: Option<u32>) -> E {
        let e = e.item().var(i, OPS);
        match path {
            Some(p) => e.var(p, 4),
            None => e,
        }
    }
    pub fn act(e: E, i: u32) -> E {
        e.item().var(i, ACTS)
    }
}

fn msg(ty: u32, req: u32, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    for v in [ty, req, 0, payload.len() as u32] {
        m.extend(v.to_le_bytes());
    }
    m.extend(payload);
    m
}

fn xenstore_replies() -> Seeds {
    use xs::*;
    let mut seeds = Vec::new();
    // A reply stream: a read reply, a watch event, an error, cut in pieces.
    let mut stream = msg(2, 1, b"4");
    stream.extend(msg(15, 0, b"/local/domain/1/device\0tok\0"));
    stream.extend(msg(16, 2, b"ENOENT\0"));
    stream.extend(msg(1, 3, b"state\0mac\0"));
    let e = E::default().var(0, 2).item().u16(5).item().u16(16).item().u16(1).item().u16(40).end().bytes_rest(&stream);
    seeds.push(("reply-stream", e.0, vec!["Decoder { cuts: [5, 16, 1, 40]"]));
    // A conversation with a well-behaved daemon.
    let mut e = E::default().var(1, 2);
    e = op(e, 0, Some(0)); // Read(Home)
    e = e.item().var(1, OPS).var(2, 4).bytes(b"4"); // Write(State, "4")
    e = op(e, 4, Some(1)); // Directory(Device)
    e = op(e, 5, Some(1)); // GetPerms
    e = op(e, 7, Some(0)); // Watch
    e = op(e, 10, Some(2)); // Transaction
    e = op(e, 11, None); // NextEvent
    e = op(e, 13, None); // ReadState
    e = e.item().var(15, OPS).u8(4); // WaitForState(Connected)
    e = e.end();
    for _ in 0..12 {
        e = act(e, 0);
    }
    e = act(e, 7).bytes(b"/local/domain/1").bytes(b"tok").bool(true);
    for _ in 0..4 {
        e = act(e, 0);
    }
    seeds.push(("conversation", e.0, vec!["Read(Home)", "Transaction(State)", "WaitForState(4)", "Proper", "Event {"]));
    // A daemon that errs, answers another id, sends garbage.
    let mut e = E::default().var(1, 2);
    e = op(e, 0, Some(0));
    e = op(e, 10, Some(2));
    e = op(e, 0, Some(3));
    e = op(e, 12, None); // WaitEvent
    e = op(e, 0, Some(0));
    e = e.end();
    e = act(e, 2).var(2, 6); // Error(EAGAIN)
    e = act(e, 0);
    e = act(e, 2).var(2, 6);
    e = act(e, 3).u32(99); // OtherId
    e = act(e, 1).bytes(b"value"); // ProperPayload
    e = act(e, 7).bytes(b"/x").bytes(b"tok").bool(false); // event without NULs
    e = act(e, 6).bytes(&[0xff; 20]); // Raw garbage
    seeds.push(("hostile-daemon", e.0, vec!["Error(Eagain)", "OtherId(99)", "Raw(["]));
    seeds
}

mod oap {
    //! offers_adverts_peers: Input 7, Format 3, Key 12, Value 6.
    pub const INPUTS: u32 = 7;
}

fn offers_adverts_peers() -> Seeds {
    use oap::*;
    let mut seeds = Vec::new();
    for (name, text) in [
        ("offer-raw", &b"version=1 nonce=7 control-ref=12 ring-pages=16 event-channel=5 frame=9014"[..]),
        ("offer-higher-raw", b"version=1 nonce=8 control-ref=13 ring-pages=4 event-channel=-\0"),
        ("offer-v2-raw", b"version=2 shape=new"),
        ("advert-raw", b"version=1 group=lab mac=00:16:3e:c0:00:10 ipv4=198.18.0.10"),
        ("peers-raw", b"v1 3=00:16:3e:c0:00:11 7=00:16:3e:c0:00:12"),
        ("mac-raw", b"00:16:3e:0a:Bc:fF"),
    ] {
        let e = E::default().var(0, INPUTS).bytes_rest(text);
        seeds.push((name, e.0, vec!["Raw(["]));
    }
    let e = E::default().var(1, INPUTS).u8(1).u32(7).u32(12).u8(16).some().u32(5).u32(9014);
    seeds.push(("offer-values", e.0, vec!["Offer { version: 1, nonce: 7"]));
    // version=1 group=lab mac=.. as words, to the advert parser.
    let e = E::default()
        .var(2, INPUTS)
        .item()
        .var(0, 12)
        .var(0, 6)
        .u32(1)
        .u8(0)
        .item()
        .var(6, 12)
        .var(4, 6)
        .u8(0)
        .u8(1)
        .item()
        .var(7, 12)
        .var(2, 6)
        .array6([0, 0x16, 0x3e, 0xc0, 0, 0x10])
        .u8(0)
        .end()
        .var(1, 3);
    seeds.push(("advert-words", e.0, vec!["key: Version", "key: Group", "key: Mac", "to: Advert"]));
    let e =
        E::default().var(3, INPUTS).u32(1).bytes(b"lab").array6([0, 0x16, 0x3e, 0xc0, 0, 0x10]).some().array4([198, 18, 0, 10]);
    seeds.push(("advert-values", e.0, vec!["Advert { version: 1"]));
    let mut e = E::default().var(4, INPUTS);
    for d in [7u16, 3, 9, 3] {
        e = e.item().u16(d).array6([0, 0x16, 0x3e, 0xc0, 0, d as u8]);
    }
    seeds.push(("peers-values", e.0, vec!["Peers([(7,"]));
    let mut e = E::default().var(5, INPUTS);
    for (d, g) in [(1u16, 0u8), (2, 0), (3, 1), (4, 0), (5, 1)] {
        e = e.item().u16(d).u8(g).array6([0, 0x16, 0x3e, 0xc0, 0, d as u8]);
    }
    seeds.push(("members", e.0, vec!["Members([(1, 0,"]));
    let e = E::default().var(6, INPUTS).u32(4_294_967_295).array6([0, 0x16, 0x3e, 0xab, 1, 0xff]);
    seeds.push(("values", e.0, vec!["Values { n: 4294967295"]));
    seeds
}

mod ds {
    //! discoveryd_store: Op 12, MacChoice 3, AdvertChoice 2, Target 6.
    use super::E;
    pub const OPS: u32 = 12;
    pub fn create(e: E, d: u8) -> E {
        e.item().var(0, OPS).u8(d)
    }
    pub fn vif(e: E, d: u8, devid: u8) -> E {
        e.item().var(2, OPS).u8(d).u8(devid).var(0, 3).u8(d).u8(devid)
    }
    pub fn advert(e: E, d: u8, group: u8, mac_of: u8) -> E {
        e.item().var(4, OPS).u8(d).var(0, 2).u8(group).var(0, 3).u8(mac_of).u8(0).some().array4([198, 18, 0, d]).u8(1)
    }
    pub fn scan(e: E) -> E {
        e.item().var(11, OPS)
    }
}

fn discoveryd_store() -> Seeds {
    use ds::*;
    let mut seeds = Vec::new();
    // Guests 1-4 (ids are taken modulo 6, plus 1): three in "lab", one in
    // "web"; then guest 3 forges guest 1's MAC, guest 2 tries to write its
    // own vif MAC and its list, guest 4 leaves, a stale list is found.
    let mut e = E::default();
    for d in 0..4 {
        e = create(e, d);
        e = vif(e, d, 0);
    }
    for (d, g) in [(0, 0), (1, 0), (2, 0), (3, 1)] {
        e = advert(e, d, g, d);
    }
    e = scan(e);
    e = advert(e, 2, 0, 0);
    e = e.item().var(8, OPS).u8(1).var(1, 6).u8(0).bytes(b"00:16:3e:c0:00:02");
    e = e.item().var(8, OPS).u8(1).var(3, 6).bytes(b"v1 9=00:16:3e:c0:00:09");
    e = scan(e);
    e = e.item().var(1, OPS).u8(3); // Destroy
    e = e.item().var(9, OPS).u16(9).bytes(b"v1"); // Stale
    e = scan(e);
    e = e.item().var(7, OPS).u8(0).u8(1); // Share
    e = e.item().var(8, OPS).u8(1).var(0, 6).u8(0).bytes(b"version=1 group=web mac=00:16:3e:c0:00:02");
    e = scan(e);
    seeds.push((
        "group-with-a-forger",
        e.0,
        vec!["Create(0)", "Vif { d: 0", "Advert { d: 2", "Scan", "Destroy(3)", "Stale { d: 9"],
    ));
    // A guest that removes its home, advertises garbage, and comes back.
    let mut e = E::default();
    e = create(e, 0);
    e = vif(e, 0, 1);
    e = create(e, 1);
    e = vif(e, 1, 0);
    e = advert(e, 0, 0, 0);
    e = advert(e, 1, 0, 1);
    e = scan(e);
    e = e.item().var(6, OPS).u8(1); // RmHome
    e = e.item().var(4, OPS).u8(0).var(1, 2).bytes(b"version=1 group=../x mac=zz");
    e = scan(e);
    e = e.item().var(10, OPS); // Restart
    e = e.item().var(3, OPS).u8(0).u8(1); // RmVif
    e = scan(e);
    seeds.push(("home-removed-and-garbage", e.0, vec!["RmHome(1)", "Bytes(", "Restart", "RmVif"]));
    seeds
}

fn main() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let all: [(&str, Seeds); 5] = [
        ("channel_ring", channel_ring()),
        ("netif_responses", netif_responses()),
        ("xenstore_replies", xenstore_replies()),
        ("offers_adverts_peers", offers_adverts_peers()),
        ("discoveryd_store", discoveryd_store()),
    ];
    for (target, seeds) in all {
        let dir = fuzz.join("seeds").join(target);
        std::fs::create_dir_all(&dir).expect("seeds dir");
        for (name, bytes, wants) in seeds {
            let shown = debug_of(target, &bytes);
            for w in wants {
                assert!(shown.contains(w), "{target}/{name}: decodes to\n{shown}\nwhich lacks {w:?}");
            }
            let (_, check) = fuzz_checks::TARGETS.iter().find(|(t, _)| *t == target).expect("target");
            check(&bytes);
            std::fs::write(dir.join(name), &bytes).expect("write seed");
            println!("{target}/{name}: {} bytes", bytes.len());
        }
    }
}

fn debug_of(target: &str, bytes: &[u8]) -> String {
    use fuzz_checks::*;
    match target {
        "channel_ring" => format!("{:?}", from_bytes::<channel_ring::Input>(bytes).expect("decodes")),
        "netif_responses" => format!("{:?}", from_bytes::<netif_responses::Input>(bytes).expect("decodes")),
        "xenstore_replies" => format!("{:?}", from_bytes::<xenstore_replies::Input>(bytes).expect("decodes")),
        "offers_adverts_peers" => format!("{:?}", from_bytes::<offers_adverts_peers::Input>(bytes).expect("decodes")),
        "discoveryd_store" => format!("{:?}", from_bytes::<discoveryd_store::Input>(bytes).expect("decodes")),
        _ => unreachable!(),
    }
}
