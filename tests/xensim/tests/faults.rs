//! A misbehaving xenstored: every fault is an error, never a panic.

use xen_proto::iface::SharedPage;
use xen_proto::xenstore::{Client, Config};
use xen_proto::Error;
use xensim::{Sim, SimXsRing, XsFault};
use xenstore_wire::ring::offset;
use xenstore_wire::{Error as WireError, MsgType};

fn client(sim: &Sim, domid: u16) -> Client<SimXsRing> {
    let ring = sim.create_domain(domid).xenstore();
    let cfg = Config { timeout_ns: 100_000_000, poll_ns: 10_000_000, ..Config::default() };
    Client::with_config(ring, cfg)
}

#[test]
fn garbage_reply_is_fatal() {
    let sim = Sim::new();
    let mut c = client(&sim, 1);
    c.write("k", b"v").unwrap();
    sim.set_xs_fault(1, XsFault::Garbage);
    let e = c.read("k").unwrap_err();
    assert_eq!(e, Error::Fatal(WireError::UnknownType(0xffff_ffff)));
    assert!(c.is_fatal());
    // The stream cannot be resynchronised: it stays dead.
    sim.set_xs_fault(1, XsFault::None);
    assert!(c.read("k").unwrap_err().is_fatal());
    assert!(c.next_watch_event().unwrap_err().is_fatal());
    assert!(e.to_string().contains("unusable"), "{e}");
}

#[test]
fn oversized_len_is_fatal() {
    let sim = Sim::new();
    let mut c = client(&sim, 1);
    sim.set_xs_fault(1, XsFault::OversizedLen);
    assert_eq!(c.read("k"), Err(Error::Fatal(WireError::PayloadTooLarge(4097))));
    assert!(c.is_fatal());
}

#[test]
fn unknown_req_id_is_an_error_and_client_recovers() {
    let sim = Sim::new();
    let mut c = client(&sim, 1);
    sim.set_xs_fault(1, XsFault::UnknownReqId);
    match c.write("k", b"v") {
        Err(Error::Wire(WireError::UnknownReqId(id))) => assert!(id & 0x8000_0000 != 0),
        other => panic!("expected UnknownReqId, got {other:?}"),
    }
    assert!(!c.is_fatal());
    sim.set_xs_fault(1, XsFault::None);
    // The write itself did happen; the client works again.
    assert_eq!(c.read("k").unwrap(), b"v");
    c.rm("k").unwrap();
}

#[test]
fn wrong_reply_type_is_an_error_and_client_recovers() {
    let sim = Sim::new();
    let mut c = client(&sim, 1);
    sim.set_xs_fault(1, XsFault::WrongType);
    assert_eq!(c.write("k", b"v"), Err(Error::Wire(WireError::UnexpectedType { expected: MsgType::Write, got: MsgType::Read })));
    assert_eq!(c.read("k"), Err(Error::Wire(WireError::UnexpectedType { expected: MsgType::Read, got: MsgType::Directory })));
    sim.set_xs_fault(1, XsFault::None);
    assert_eq!(c.read("k").unwrap(), b"v");
    c.rm("k").unwrap();
}

#[test]
fn never_answering_xenstored_times_out() {
    let sim = Sim::new();
    let mut c = client(&sim, 1);
    sim.set_xs_fault(1, XsFault::NeverAnswer);
    let t0 = sim.now_ns();
    assert_eq!(c.read("k"), Err(Error::Timeout));
    let waited = sim.now_ns() - t0;
    assert!((50_000_000..=100_000_000).contains(&waited), "{waited}");
    sim.set_xs_fault(1, XsFault::None);
    c.write("k", b"after").unwrap();
    assert_eq!(c.read("k").unwrap(), b"after");
    c.rm("k").unwrap();

    // A transaction xenstored started but never confirmed stays open on
    // its side: the leak report shows it.
    sim.set_xs_fault(1, XsFault::NeverAnswer);
    assert_eq!(c.transaction(|tx| tx.write("k", b"1")), Err(Error::Timeout));
    let leaks = sim.domain_leaks(1);
    assert!(leaks.iter().any(|l| l.contains("xenstore transaction")), "{leaks:?}");
    sim.destroy_domain(1);
}

#[test]
fn late_reply_after_timeout_is_dropped() {
    let sim = Sim::new();
    let mut c = client(&sim, 1);
    sim.set_xs_fault(1, XsFault::Stalled);
    // Larger than the ring: part of it is still queued in the client.
    let big = vec![b'z'; 3000];
    assert_eq!(c.write("big", &big), Err(Error::Timeout));
    sim.set_xs_fault(1, XsFault::None);
    // The rest of the old request goes first, its late reply is skipped.
    assert_eq!(c.read("big").unwrap(), big);
    assert_eq!(c.stale_replies(), 1);
    c.rm("big").unwrap();
}

#[test]
fn corrupt_ring_index_is_fatal() {
    let sim = Sim::new();
    let mut c = client(&sim, 1);
    c.write("k", b"v").unwrap();
    let page = sim.xs_page(1);
    let cons = page.read_u32(offset::RSP_CONS);
    page.write_u32(offset::RSP_PROD, cons.wrapping_add(5000));
    let e = c.read("k").unwrap_err();
    assert!(matches!(e, Error::Fatal(WireError::RingCorrupted { .. })), "{e:?}");
    assert!(c.read("k").unwrap_err().is_fatal());
}

#[test]
fn pending_table_fills_with_abandoned_requests() {
    let sim = Sim::new();
    let ring = sim.create_domain(1).xenstore();
    let cfg = Config { timeout_ns: 1_000, poll_ns: 1_000, max_pending: 2, ..Config::default() };
    let mut c = Client::with_config(ring, cfg);
    sim.set_xs_fault(1, XsFault::NeverAnswer);
    assert_eq!(c.read("a"), Err(Error::Timeout));
    assert_eq!(c.read("a"), Err(Error::Timeout));
    assert_eq!(c.read("a"), Err(Error::Wire(WireError::PendingFull)));
}
