//! The leak assertion catches what a driver forgot to give back.

use std::panic::{catch_unwind, AssertUnwindSafe};

use xen_proto::iface::{EventChannels, GrantTable};
use xensim::Sim;

#[test]
#[should_panic(expected = "dom1: grant ref 8 (page 1) still granted to dom2")]
fn leaked_grant_fails_the_test_on_drop() {
    let sim = Sim::new();
    sim.create_domain(2);
    let mut g = sim.create_domain(1).gnttab();
    let page = g.alloc_page().unwrap();
    g.grant(&page, 2, false).unwrap();
    // Forgot to revoke (and free the page): `sim` panics when dropped.
}

#[test]
fn every_kind_of_leak_is_listed() {
    let xen = xensim::Xen::new();
    let (d1, d2) = (xen.create_domain(1), xen.create_domain(2));
    let (mut g1, mut g2) = (d1.gnttab(), d2.gnttab());
    let page = g1.alloc_page().unwrap();
    let gref = g1.grant(&page, 2, true).unwrap();
    let mapped = g2.map(1, gref, true).unwrap();
    let port = d1.evtchn().alloc_unbound(2).unwrap();
    let mut c = d1.xenstore_client();
    c.watch("/local/domain/1", "leaky").unwrap();

    let msg = catch_unwind(AssertUnwindSafe(|| xen.assert_no_leaks())).unwrap_err();
    let msg = msg.downcast_ref::<String>().unwrap().clone();
    for needle in [
        "dom1: grant ref 8 (page 1) still granted to dom2 (mapped 1 times)",
        "dom2: mapping 1 of dom1 grant ref 8 still mapped",
        &format!("dom1: event channel port {port} still open (unbound for dom2)"),
        "dom1: page 1 allocated but not freed",
        "dom1: xenstore watch on \"/local/domain/1\" token \"leaky\" still registered",
    ] {
        assert!(msg.contains(needle), "missing {needle:?} in:\n{msg}");
    }

    // Cleaning up makes it pass.
    c.unwatch("/local/domain/1", "leaky").unwrap();
    d1.evtchn().close(port).unwrap();
    g2.unmap(mapped).unwrap();
    g1.revoke(gref).unwrap();
    g1.free_page(page);
    xen.assert_no_leaks();
    xen.assert_domain_no_leaks(1);
}
