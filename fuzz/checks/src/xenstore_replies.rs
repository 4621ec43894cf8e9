//! `xenstore_replies`: what a hostile xenstored can send a guest.
//!
//! Two halves, chosen by the input:
//!
//! - **Decoder**: a byte stream cut into arbitrary chunks. Pushing it in
//!   pieces must give the same messages and the same poisoning as pushing
//!   it whole; every message respects the payload limit, its header
//!   re-encodes to the bytes it came from, and every reply parser
//!   (`reply::*`) answers with a value or an error on it, never a panic.
//! - **Client**: xen-proto's blocking [`Client`] on a fake xenstore ring
//!   whose daemon follows a fuzzer-written script: proper replies to the
//!   request it read, errors, replies with another id, type or length,
//!   raw bytes, watch events (well or badly formed), silence, ring indices
//!   that lie. The client runs reads, writes, directories, permissions,
//!   watches, transactions, xenbus state waits. Checked: no panic, every
//!   call returns (the time budget is virtual and bounded), a value read is
//!   one the daemon sent, and once the client reports the ring fatal every
//!   later call fails the same way.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use arbitrary::Arbitrary;
use xen_proto::iface::{SharedPage, XenError, XenstoreRing};
use xen_proto::test_support::FakePage;
use xen_proto::xenbus::{self, XenbusState};
use xen_proto::xenstore::{Client, Config};
use xen_proto::Error;
use xenstore_wire::ring::{offset, XENSTORE_RING_SIZE};
use xenstore_wire::{reply, Access, Decoder, Header, Message, MsgType, Permission, HEADER_LEN, XENSTORE_PAYLOAD_MAX};

const MAX_OPS: usize = 24;
const MAX_SCRIPT: usize = 64;

#[derive(Arbitrary, Debug)]
pub enum Input {
    Decoder { cuts: Vec<u16>, stream: Vec<u8> },
    Client { ops: Vec<ClientOp>, script: Vec<Action> },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Path {
    Home,
    Device,
    State,
    Deep,
}

impl Path {
    fn as_str(self) -> &'static str {
        match self {
            Path::Home => "/local/domain/1",
            Path::Device => "device/vif/0",
            Path::State => "device/vif/0/state",
            Path::Deep => "/local/domain/0/backend/vif/1/0/feature-sg",
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub enum ClientOp {
    Read(Path),
    Write(Path, Vec<u8>),
    Mkdir(Path),
    Rm(Path),
    Directory(Path),
    GetPerms(Path),
    SetPerms(Path, u16),
    Watch(Path),
    Unwatch(Path),
    DomainPath(u16),
    /// A transaction doing a read and a write.
    Transaction(Path),
    NextEvent,
    WaitEvent,
    ReadState,
    SwitchState(u8),
    WaitForState(u8),
}

/// What the daemon does the next time the guest kicks or waits.
#[derive(Arbitrary, Debug, Clone)]
pub enum Action {
    /// Answers the oldest request read with a reply of its own type and
    /// a payload that suits it.
    Proper,
    /// Answers it with a payload of the fuzzer's choosing.
    ProperPayload(Vec<u8>),
    /// Answers it with `XS_ERROR` and this text.
    Error(ErrName),
    /// Answers with the request's type but another id.
    OtherId(u32),
    /// Answers with another type.
    OtherType(u32),
    /// A header exactly as given, then the payload.
    Header { ty: u32, req_id: Option<u32>, tx_id: u32, len: u32, payload: Vec<u8> },
    /// Bytes into the response ring.
    Raw(Vec<u8>),
    /// A watch event (path, token), maybe without its NULs.
    Event { path: Vec<u8>, token: Vec<u8>, nul: bool },
    /// Nothing this time.
    Silence,
    /// The response producer index moves by `delta` (bytes are whatever
    /// the ring holds).
    RspProd(u32),
    /// The request consumer index is set to this.
    ReqCons(u32),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum ErrName {
    Enoent,
    Eacces,
    Eagain,
    Eexist,
    Einval,
    Unknown,
}

impl ErrName {
    fn text(self) -> &'static [u8] {
        match self {
            ErrName::Enoent => b"ENOENT\0",
            ErrName::Eacces => b"EACCES\0",
            ErrName::Eagain => b"EAGAIN\0",
            ErrName::Eexist => b"EEXIST\0",
            ErrName::Einval => b"EINVAL\0",
            ErrName::Unknown => b"EWHAT\0",
        }
    }
}

/// Runs one input.
pub fn check(data: &[u8]) {
    let Some(input) = crate::from_bytes::<Input>(data) else { return };
    match input {
        Input::Decoder { cuts, stream } => decoder(&cuts, &stream),
        Input::Client { ops, script } => client(ops, script),
    }
}

fn drain(d: &mut Decoder) -> Vec<Message> {
    std::iter::from_fn(|| d.next_message()).collect()
}

fn decoder(cuts: &[u16], stream: &[u8]) {
    let mut whole = Decoder::new();
    let whole_result = whole.push(stream);
    let want = drain(&mut whole);
    assert_eq!(whole_result.is_err(), whole.is_poisoned());

    let mut parts = Decoder::new();
    let mut rest = stream;
    for &c in cuts {
        let (a, b) = rest.split_at(usize::from(c).min(rest.len()));
        if parts.push(a).is_err() {
            break;
        }
        rest = b;
    }
    let _ = parts.push(rest);
    let got = drain(&mut parts);
    assert_eq!(got, want, "chunking changed the messages");
    assert_eq!(parts.poison_error(), whole.poison_error(), "chunking changed the poisoning");

    // The messages are the stream's bytes, in order.
    let mut at = 0;
    for m in &want {
        assert!(m.payload.len() <= XENSTORE_PAYLOAD_MAX);
        assert_eq!(m.payload.len(), m.header.payload_len());
        let h = m.header.to_bytes();
        assert_eq!(Header::parse(&h), Ok(m.header));
        // A header is re-encoded to the same bytes, except a type whose
        // code has aliases (none today: then this would say so).
        assert_eq!(&stream[at..at + HEADER_LEN], &h[..], "header does not re-encode to its bytes");
        at += HEADER_LEN;
        assert_eq!(&stream[at..at + m.payload.len()], &m.payload[..]);
        at += m.payload.len();
        parse_everything(m);
    }
    if !whole.is_poisoned() {
        // Whatever is left is a partial message.
        assert!(stream.len() - at < HEADER_LEN + XENSTORE_PAYLOAD_MAX);
        assert_eq!(whole.has_partial(), stream.len() > at);
    }
}

/// Every reply parser on `m`: a value or an error.
fn parse_everything(m: &Message) {
    let _ = reply::read(m);
    let _ = reply::directory(m);
    let _ = reply::transaction_start(m);
    let _ = reply::get_perms(m);
    let _ = reply::get_domain_path(m);
    if let Ok(ev) = reply::watch_event(m) {
        assert!(!ev.path.contains('\0') && !ev.token.contains('\0'));
    }
    for ty in [MsgType::Write, MsgType::Mkdir, MsgType::Rm, MsgType::Watch, MsgType::TransactionEnd] {
        let _ = reply::ack(m, ty);
        let _ = reply::expect(m, ty);
    }
    let _ = reply::parse_ok(&m.payload);
    let _ = xenstore_wire::XsError::from_payload(&m.payload);
    let _ = XenbusState::parse(&m.payload);
}

/// The hostile daemon.
struct Daemon {
    page: FakePage,
    script: VecDeque<Action>,
    /// Requests read, not answered.
    requests: VecDeque<Message>,
    decoder: Decoder,
    /// Bytes waiting for room in the response ring.
    out: VecDeque<u8>,
    /// Every byte sent (a value read must be some of them, in a row).
    sent: Vec<u8>,
    /// The response producer index lied: the client may read stale bytes.
    lied: bool,
}

impl Daemon {
    /// Reads requests, acts once, moves bytes. True if anything moved.
    fn react(&mut self) -> bool {
        let mut moved = self.read_requests();
        if let Some(a) = self.script.pop_front() {
            self.act(a);
            moved = true;
        }
        moved | self.write_out()
    }

    fn read_requests(&mut self) -> bool {
        let p = &self.page;
        let cons = p.read_u32(offset::REQ_CONS);
        let prod = p.read_u32(offset::REQ_PROD);
        let n = prod.wrapping_sub(cons) as usize;
        if n == 0 || n > XENSTORE_RING_SIZE {
            return false;
        }
        let mut bytes = vec![0u8; n];
        for (i, b) in bytes.iter_mut().enumerate() {
            let at = (cons as usize + i) % XENSTORE_RING_SIZE;
            let mut one = [0u8];
            p.read_bytes(offset::REQ + at, &mut one);
            *b = one[0];
        }
        p.write_u32(offset::REQ_CONS, prod);
        // The client's requests are well formed, but a lying req_cons
        // makes us read old bytes again: then we lose track.
        if self.decoder.push(&bytes).is_err() {
            self.decoder.reset();
        }
        self.requests.extend(drain(&mut self.decoder));
        true
    }

    fn write_out(&mut self) -> bool {
        let p = &self.page;
        let cons = p.read_u32(offset::RSP_CONS);
        let mut prod = p.read_u32(offset::RSP_PROD);
        let used = prod.wrapping_sub(cons) as usize;
        if used > XENSTORE_RING_SIZE {
            return false;
        }
        let mut n = 0;
        while n < XENSTORE_RING_SIZE - used {
            let Some(b) = self.out.pop_front() else { break };
            p.write_bytes(offset::RSP + prod as usize % XENSTORE_RING_SIZE, &[b]);
            prod = prod.wrapping_add(1);
            n += 1;
        }
        if n > 0 {
            p.write_u32(offset::RSP_PROD, prod);
        }
        n > 0
    }

    fn send(&mut self, ty: u32, req_id: u32, tx_id: u32, payload: &[u8]) {
        self.send_raw_len(ty, req_id, tx_id, payload.len() as u32, payload);
    }

    fn send_raw_len(&mut self, ty: u32, req_id: u32, tx_id: u32, len: u32, payload: &[u8]) {
        for v in [ty, req_id, tx_id, len] {
            self.out.extend(v.to_le_bytes());
            self.sent.extend(v.to_le_bytes());
        }
        self.out.extend(payload.iter().copied());
        self.sent.extend_from_slice(payload);
    }

    fn act(&mut self, a: Action) {
        match a {
            Action::Proper => {
                let Some(r) = self.requests.pop_front() else { return };
                let payload: Vec<u8> = match r.msg_type() {
                    MsgType::Read => b"4".to_vec(),
                    MsgType::Directory => b"0\0state\0mac\0".to_vec(),
                    MsgType::GetPerms => b"n0\0r1\0".to_vec(),
                    MsgType::TransactionStart => b"17\0".to_vec(),
                    MsgType::GetDomainPath => b"/local/domain/1\0".to_vec(),
                    _ => b"OK\0".to_vec(),
                };
                self.send(r.msg_type().code(), r.req_id(), r.tx_id(), &payload);
            }
            Action::ProperPayload(p) => {
                let Some(r) = self.requests.pop_front() else { return };
                let p = &p[..p.len().min(XENSTORE_PAYLOAD_MAX)];
                self.send(r.msg_type().code(), r.req_id(), r.tx_id(), p);
            }
            Action::Error(e) => {
                let Some(r) = self.requests.pop_front() else { return };
                self.send(MsgType::Error.code(), r.req_id(), r.tx_id(), e.text());
            }
            Action::OtherId(id) => {
                let Some(r) = self.requests.front() else { return };
                let (ty, tx) = (r.msg_type().code(), r.tx_id());
                self.send(ty, id, tx, b"OK\0");
            }
            Action::OtherType(ty) => {
                let Some(r) = self.requests.pop_front() else { return };
                self.send(ty, r.req_id(), r.tx_id(), b"OK\0");
            }
            Action::Header { ty, req_id, tx_id, len, payload } => {
                let id = req_id.or_else(|| self.requests.front().map(Message::req_id)).unwrap_or(0);
                let payload = &payload[..payload.len().min(2 * XENSTORE_PAYLOAD_MAX)];
                self.send_raw_len(ty, id, tx_id, len, payload);
            }
            Action::Raw(bytes) => {
                let bytes = &bytes[..bytes.len().min(2 * XENSTORE_RING_SIZE)];
                self.out.extend(bytes.iter().copied());
                self.sent.extend_from_slice(bytes);
            }
            Action::Event { path, token, nul } => {
                let mut p = path;
                let mut t = token;
                p.truncate(256);
                t.truncate(64);
                if nul {
                    p.push(0);
                    t.push(0);
                }
                let mut payload = p;
                payload.extend(t);
                self.send(MsgType::WatchEvent.code(), 0, 0, &payload);
            }
            Action::Silence => {}
            Action::RspProd(delta) => {
                let p = self.page.read_u32(offset::RSP_PROD).wrapping_add(delta);
                self.page.write_u32(offset::RSP_PROD, p);
                self.lied = true;
            }
            Action::ReqCons(v) => self.page.write_u32(offset::REQ_CONS, v),
        }
    }
}

struct FakeRing {
    page: FakePage,
    daemon: Rc<RefCell<Daemon>>,
    waits: Rc<RefCell<u64>>,
}

impl XenstoreRing for FakeRing {
    type Page = FakePage;
    fn page(&self) -> &FakePage {
        &self.page
    }
    fn notify(&mut self) -> Result<(), XenError> {
        // The daemon reads what we wrote (and acts at the next wait).
        self.daemon.borrow_mut().read_requests();
        Ok(())
    }
    fn wait(&mut self, _timeout_ns: u64) -> bool {
        *self.waits.borrow_mut() += 1;
        self.daemon.borrow_mut().react()
    }
    /// Virtual time: each wait is one poll interval (`poll_ns` below).
    fn now_ns(&self) -> u64 {
        *self.waits.borrow() * 10
    }
}

fn client(ops: Vec<ClientOp>, script: Vec<Action>) {
    let page = FakePage::new();
    let daemon = Rc::new(RefCell::new(Daemon {
        page: page.clone(), // the same page: both ends of the ring hold it
        script: script.into_iter().take(MAX_SCRIPT).collect(),
        requests: VecDeque::new(),
        decoder: Decoder::new(),
        out: VecDeque::new(),
        sent: Vec::new(),
        lied: false,
    }));
    let waits = Rc::new(RefCell::new(0u64));
    let ring = FakeRing { page, daemon: daemon.clone(), waits: waits.clone() };
    // Virtual time: a wait returns at once and moves the clock one poll.
    let config =
        Config { timeout_ns: 40, poll_ns: 10, tx_retries: 3, max_pending: 4, max_queued_events: 8, max_messages_per_call: 64 };
    let mut c = Client::with_config(ring, config);
    let mut fatal = false;
    for op in ops.iter().take(MAX_OPS) {
        let before = *waits.borrow();
        let result: Result<(), Error> = match op {
            ClientOp::Read(p) => c.read(p.as_str()).map(|v| {
                let d = daemon.borrow();
                let sent = v.is_empty() || d.sent.windows(v.len()).any(|w| w == v.as_slice());
                assert!(d.lied || sent, "read returned {v:?}, which the daemon never sent");
            }),
            ClientOp::Write(p, v) => c.write(p.as_str(), &v[..v.len().min(64)]),
            ClientOp::Mkdir(p) => c.mkdir(p.as_str()),
            ClientOp::Rm(p) => c.rm(p.as_str()),
            ClientOp::Directory(p) => c.directory(p.as_str()).map(|names| {
                assert!(names.iter().all(|n| !n.contains('\0')));
            }),
            ClientOp::GetPerms(p) => c.get_perms(p.as_str()).map(drop),
            ClientOp::SetPerms(p, d) => c.set_perms(p.as_str(), &[Permission::new(*d, Access::Read)]),
            ClientOp::Watch(p) => c.watch(p.as_str(), "tok"),
            ClientOp::Unwatch(p) => c.unwatch(p.as_str(), "tok"),
            ClientOp::DomainPath(d) => c.get_domain_path(*d).map(drop),
            ClientOp::Transaction(p) => c
                .transaction(|tx| {
                    let v = tx.read(p.as_str())?;
                    tx.write(p.as_str(), &v[..v.len().min(16)])
                })
                .map(drop),
            ClientOp::NextEvent => c.next_watch_event().map(drop),
            ClientOp::WaitEvent => c.wait_watch_event(30).map(drop),
            ClientOp::ReadState => xenbus::read_state(&mut c, Path::State.as_str()).map(drop),
            ClientOp::SwitchState(s) => xenbus::switch_state(&mut c, Path::State.as_str(), state(*s)),
            ClientOp::WaitForState(s) => xenbus::wait_for_state(&mut c, Path::State.as_str(), &[state(*s)], 30).map(drop),
        };
        // Bounded: a call waits at most its budget, plus the waits of a
        // transaction's retries and of a xenbus wait's reads (each of
        // which the daemon's script must feed).
        let waited = *waits.borrow() - before;
        assert!(waited <= 64 + 8 * MAX_SCRIPT as u64, "one call waited {waited} times");
        // Watch events queued before the ring broke are still handed out
        // (they were decoded from good bytes); every call that needs the
        // ring fails.
        let queued_event = matches!(op, ClientOp::NextEvent | ClientOp::WaitEvent) && result.is_ok();
        if fatal && !queued_event {
            assert!(matches!(result, Err(Error::Fatal(_))), "after a fatal error: {op:?} gave {result:?}");
        }
        if let Err(Error::Fatal(_)) = result {
            assert!(c.is_fatal());
        }
        fatal |= c.is_fatal();
    }
}

fn state(n: u8) -> XenbusState {
    XenbusState::from_number(u32::from(n) % 9).unwrap_or(XenbusState::Unknown)
}
