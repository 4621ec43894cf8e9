//! A xenstored that never stops sending watch events: no call of the
//! client may last longer than its deadline on the ring's clock, or
//! handle more than its message budget, however busy the ring is.

use core::cell::{Cell, RefCell};
use std::string::String;
use std::vec::Vec;

use xenstore_wire::ring::{mask, offset, XENSTORE_RING_SIZE};
use xenstore_wire::{Header, MsgType};

use super::{Client, Config};
use crate::error::Error;
use crate::iface::{SharedPage, XenError, XenstoreRing};
use crate::test_support::{drain_requests, FakePage};

/// Consumes every request and answers none; whenever the guest kicks it,
/// fills the response ring with watch events. Each kick costs 10 us of
/// the clock; waits advance it by their timeout.
struct Flood {
    page: FakePage,
    clock: Cell<u64>,
    sent: Cell<u64>,
    /// The guest's requests, as consumed.
    requests: RefCell<Vec<u8>>,
}

/// Past this many events the flood gives up by panicking: a client
/// without bounds would otherwise never return.
const FLOOD_LIMIT: u64 = 5_000_000;

impl Flood {
    fn new() -> Flood {
        Flood { page: FakePage::new(), clock: Cell::new(0), sent: Cell::new(0), requests: RefCell::new(Vec::new()) }
    }

    fn event() -> Vec<u8> {
        let payload = b"/local/domain/7/data/x\0tok\0";
        let h = Header { msg_type: MsgType::WatchEvent, req_id: 0, tx_id: 0, len: payload.len() as u32 };
        let mut m = h.to_bytes().to_vec();
        m.extend_from_slice(payload);
        m
    }

    fn serve(&self) {
        let p = &self.page;
        self.requests.borrow_mut().extend(drain_requests(p));
        let ev = Flood::event();
        loop {
            let (cons, mut prod) = (p.read_u32(offset::RSP_CONS), p.read_u32(offset::RSP_PROD));
            if XENSTORE_RING_SIZE - (prod.wrapping_sub(cons) as usize) < ev.len() {
                break;
            }
            for &b in &ev {
                p.write_bytes(offset::RSP + mask(prod), &[b]);
                prod = prod.wrapping_add(1);
            }
            p.write_u32(offset::RSP_PROD, prod);
            self.sent.set(self.sent.get() + 1);
            assert!(self.sent.get() < FLOOD_LIMIT, "the client never stopped reading the flood");
        }
    }
}

impl XenstoreRing for Flood {
    type Page = FakePage;
    fn page(&self) -> &FakePage {
        &self.page
    }
    fn notify(&mut self) -> Result<(), XenError> {
        self.clock.set(self.clock.get() + 10_000);
        self.serve();
        Ok(())
    }
    fn wait(&mut self, timeout_ns: u64) -> bool {
        self.clock.set(self.clock.get() + timeout_ns);
        self.serve();
        false
    }
    fn now_ns(&self) -> u64 {
        self.clock.get()
    }
}

const MS: u64 = 1_000_000;

fn client(max_messages_per_call: usize) -> Client<Flood> {
    let config = Config { timeout_ns: 100 * MS, poll_ns: 10 * MS, max_messages_per_call, ..Config::default() };
    let c = Client::with_config(Flood::new(), config);
    c.ring().serve();
    c
}

#[test]
fn a_request_ends_at_its_deadline_however_many_events_arrive() {
    let mut c = client(usize::MAX);
    let start = c.now_ns();
    assert_eq!(c.read("/a"), Err(Error::Timeout));
    let took = c.now_ns() - start;
    // The deadline, and at most one ring's worth of reading past it.
    assert!((100 * MS..100 * MS + MS).contains(&took), "took {took} ns");
    assert!(c.ring().sent.get() > 1000, "a flood: {} events", c.ring().sent.get());
    assert!(!c.ring().requests.borrow().is_empty(), "the request went out");
}

#[test]
fn a_request_handles_at_most_its_budget_of_messages() {
    let mut c = client(200);
    let start = c.ring().sent.get();
    assert_eq!(c.read("/a"), Err(Error::Timeout));
    let handled = c.ring().sent.get() - start;
    // The budget, and what one pass over the ring had already decoded.
    assert!(handled <= 200 + 2 * (XENSTORE_RING_SIZE as u64 / 40), "{handled} events handled");
    assert!(c.now_ns() < 100 * MS, "the budget ended it first");
}

#[test]
fn waiting_for_another_token_ends_at_its_deadline() {
    let mut c = client(usize::MAX);
    let start = c.now_ns();
    assert_eq!(c.wait_watch_event_for("never", 50 * MS), Err(Error::Timeout));
    let took = c.now_ns() - start;
    assert!((50 * MS..51 * MS).contains(&took), "took {took} ns");
    // The events for other tokens were kept, up to the queue's bound.
    assert_eq!(c.next_watch_event().unwrap().map(|e| e.token), Some(String::from("tok")));
    assert!(c.dropped_watch_events() > 0);
}

#[test]
fn polling_for_an_event_returns_after_one() {
    let mut c = client(usize::MAX);
    for _ in 0..10 {
        let sent = c.ring().sent.get();
        assert!(c.next_watch_event().unwrap().is_some());
        assert!(c.ring().sent.get() - sent <= 2 * XENSTORE_RING_SIZE as u64, "one poll read a flood");
    }
}
