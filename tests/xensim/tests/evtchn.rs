//! Interdomain event channels.

use xen_proto::iface::{EventChannels, XenError};
use xensim::{DomainConfig, Sim};

#[test]
fn unbound_bind_notify_close() {
    let sim = Sim::new();
    let (d1, d2) = (sim.create_domain(1), sim.create_domain(2));
    let (mut e1, mut e2) = (d1.evtchn(), d2.evtchn());
    let p1 = e1.alloc_unbound(2).unwrap();
    assert!(p1 >= 1, "port 0 is never valid");
    // Only the named remote may bind.
    assert_eq!(sim.create_domain(3).evtchn().bind_interdomain(1, p1), Err(XenError::Errno(-22)));
    let p2 = e2.bind_interdomain(1, p1).unwrap();
    // Already bound: a second bind fails.
    assert_eq!(e2.bind_interdomain(1, p1), Err(XenError::Errno(-22)));

    assert!(!e2.wait(1_000), "nothing pending yet");
    e1.notify(p1).unwrap();
    assert!(e2.is_pending(p2));
    assert!(!e1.is_pending(p1), "notify marks the peer, not us");
    assert!(e2.wait(1_000));
    assert!(e2.take_pending(p2));
    assert!(!e2.take_pending(p2), "take clears the flag");
    e2.notify(p2).unwrap();
    assert!(e1.take_pending(p1));

    // Closing one end leaves the other unbound; notifying it is harmless.
    e2.close(p2).unwrap();
    assert_eq!(e2.notify(p2), Err(XenError::Errno(-22)));
    assert_eq!(e2.close(p2), Err(XenError::Errno(-22)));
    e1.notify(p1).unwrap();
    // The unbound end can be bound again.
    let p2 = e2.bind_interdomain(1, p1).unwrap();
    e1.notify(p1).unwrap();
    assert!(e2.take_pending(p2));
    e1.close(p1).unwrap();
    e2.close(p2).unwrap();
    assert!(!e1.is_open(p1));
}

#[test]
fn bind_errors_and_port_limit() {
    let sim = Sim::new();
    let cfg = DomainConfig { max_ports: 2, ..DomainConfig::default() };
    let mut e1 = sim.create_domain_with(1, cfg).evtchn();
    let mut e2 = sim.create_domain(2).evtchn();
    assert_eq!(e2.bind_interdomain(9, 1), Err(XenError::Errno(-3)), "no such domain");
    assert_eq!(e2.bind_interdomain(1, 5), Err(XenError::Errno(-22)), "no such port");
    let a = e1.alloc_unbound(2).unwrap();
    let b = e1.alloc_unbound(2).unwrap();
    assert_eq!(e1.alloc_unbound(2), Err(XenError::Exhausted));
    e1.close(a).unwrap();
    assert_eq!(e1.alloc_unbound(2), Ok(a), "lowest free port is reused");
    e1.close(a).unwrap();
    e1.close(b).unwrap();
    assert!(!e1.take_pending(a));
}

#[test]
fn wait_advances_virtual_time_only_when_idle() {
    let sim = Sim::new();
    let (mut e1, mut e2) = (sim.create_domain(1).evtchn(), sim.create_domain(2).evtchn());
    let p1 = e1.alloc_unbound(2).unwrap();
    let p2 = e2.bind_interdomain(1, p1).unwrap();
    let t0 = sim.now_ns();
    assert!(!e2.wait(5_000));
    assert_eq!(sim.now_ns(), t0 + 5_000);
    // A step hook plays the peer: it notifies while dom2 waits.
    let peer = std::cell::RefCell::new(e1);
    let peer = std::rc::Rc::new(peer);
    let hook_peer = peer.clone();
    sim.set_step_hook(move || hook_peer.borrow_mut().notify(p1).unwrap());
    assert!(e2.wait(5_000));
    assert_eq!(sim.now_ns(), t0 + 5_000, "woken, no time passed");
    sim.clear_step_hook();
    assert!(e2.take_pending(p2));
    e2.close(p2).unwrap();
    peer.borrow_mut().close(p1).unwrap();
}
