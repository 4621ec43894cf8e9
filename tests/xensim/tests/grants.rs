//! Cross-domain grant tables.

use std::panic::{catch_unwind, AssertUnwindSafe};

use xen_proto::iface::{GrantTable, SharedPage, XenError};
use xensim::{DomainConfig, Sim, GNTST_BAD_DOMAIN, GNTST_BAD_GNTREF, GNTST_BAD_HANDLE, GNTST_PERMISSION_DENIED};

#[test]
fn shared_page_round_trip() {
    let sim = Sim::new();
    let (d1, d2) = (sim.create_domain(1), sim.create_domain(2));
    let (mut g1, mut g2) = (d1.gnttab(), d2.gnttab());
    let page = g1.alloc_page().unwrap();
    let mut zero = [0xffu8; 16];
    page.read_bytes(0, &mut zero);
    assert_eq!(zero, [0; 16], "fresh pages are zeroed");
    let pattern: Vec<u8> = (0..=255).collect();
    page.write_bytes(100, &pattern);
    let gref = g1.grant(&page, 2, false).unwrap();
    assert!(gref >= 8, "reserved refs are never handed out");

    let mapped = g2.map(1, gref, false).unwrap();
    let mut seen = vec![0u8; 256];
    mapped.read_bytes(100, &mut seen);
    assert_eq!(seen, pattern);
    mapped.write_u32(4092, 0xc0ffee);
    assert_eq!(page.read_u32(4092), 0xc0ffee, "the granter sees the answer");

    // Revoke while mapped: EBUSY, and the grant stays.
    assert_eq!(g1.revoke(gref), Err(XenError::Errno(-16)));
    g2.unmap(mapped).unwrap();
    g1.revoke(gref).unwrap();
    assert_eq!(g1.revoke(gref), Err(XenError::Errno(-22)));
    assert_eq!(g2.map(1, gref, false).err(), Some(XenError::Status(GNTST_BAD_GNTREF)));
    g1.free_page(page);
}

#[test]
fn mapping_rules() {
    let sim = Sim::new();
    let (d1, d2, d3) = (sim.create_domain(1), sim.create_domain(2), sim.create_domain(3));
    let (mut g1, mut g2, mut g3) = (d1.gnttab(), d2.gnttab(), d3.gnttab());
    let page = g1.alloc_page().unwrap();
    let rw = g1.grant(&page, 2, false).unwrap();
    let ro = g1.grant(&page, 2, true).unwrap();
    let deny = |e: Option<XenError>| assert_eq!(e, Some(XenError::Status(GNTST_PERMISSION_DENIED)));
    // Not granted to dom3.
    deny(g3.map(1, rw, false).err());
    // Read-only grant mapped writable.
    deny(g2.map(1, ro, false).err());
    // Wrong granter domain, unknown ref, missing domain.
    assert_eq!(g2.map(3, rw, false).err(), Some(XenError::Status(GNTST_BAD_GNTREF)));
    assert_eq!(g2.map(1, 999, false).err(), Some(XenError::Status(GNTST_BAD_GNTREF)));
    assert_eq!(g2.map(42, rw, false).err(), Some(XenError::Status(GNTST_BAD_DOMAIN)));

    // Read-only mapping: reads work, a write faults (panics), memory intact.
    page.write_u32(0, 7);
    let m = g2.map(1, ro, true).unwrap();
    assert!(m.is_readonly());
    assert_eq!(m.read_u32(0), 7);
    let fault = catch_unwind(AssertUnwindSafe(|| m.write_u32(0, 8))).unwrap_err();
    let msg = fault.downcast_ref::<String>().unwrap();
    assert!(msg.contains("read-only grant mapping"), "{msg}");
    assert_eq!(page.read_u32(0), 7);

    g2.unmap(m).unwrap();

    // Unmapping someone else's mapping: an unknown handle for dom3. The
    // mapping (moved into the failed call) stays dom2's: the ref is busy
    // and the leak report names it.
    let m2 = g2.map(1, rw, false).unwrap();
    assert_eq!(g3.unmap(m2), Err(XenError::Status(GNTST_BAD_HANDLE)));
    assert_eq!(g1.revoke(rw), Err(XenError::Errno(-16)));
    let leaks = sim.domain_leaks(2);
    assert!(leaks.iter().any(|l| l.contains("grant ref 8 still mapped")), "{leaks:?}");
    // Domain death releases its mappings, as in Xen.
    sim.destroy_domain(2);
    g1.revoke(rw).unwrap();

    // Granting a page that is not ours is refused.
    let foreign = g3.alloc_page().unwrap();
    assert_eq!(g1.grant(&foreign, 3, false), Err(XenError::Errno(-22)));
    g3.free_page(foreign);

    g1.revoke(ro).unwrap();
    g1.free_page(page);
}

#[test]
fn grant_refs_exhaust() {
    let sim = Sim::new();
    let cfg = DomainConfig { grant_refs: 4, ..DomainConfig::default() };
    let d1 = sim.create_domain_with(1, cfg);
    sim.create_domain(2);
    let mut g1 = d1.gnttab();
    let page = g1.alloc_page().unwrap();
    let refs: Vec<_> = (0..4).map(|_| g1.grant(&page, 2, true).unwrap()).collect();
    assert_eq!(refs, [8, 9, 10, 11]);
    assert_eq!(g1.grant(&page, 2, true), Err(XenError::Exhausted));
    g1.revoke(9).unwrap();
    assert_eq!(g1.grant(&page, 2, true), Ok(9), "a revoked ref is reusable");
    for r in refs {
        g1.revoke(r).unwrap();
    }
    g1.free_page(page);
}

#[test]
fn page_allocation_limit() {
    let sim = Sim::new();
    let cfg = DomainConfig { max_pages: 2, ..DomainConfig::default() };
    let mut g = sim.create_domain_with(1, cfg).gnttab();
    let a = g.alloc_page().unwrap();
    let b = g.alloc_page().unwrap();
    assert_ne!(a.id(), b.id());
    assert_eq!(g.alloc_page().err(), Some(XenError::Exhausted));
    g.free_page(a);
    g.free_page(b);
}

#[test]
#[should_panic(expected = "still granted as ref 8")]
fn freeing_a_granted_page_panics() {
    let sim = Sim::new();
    sim.create_domain(2);
    let mut g = sim.create_domain(1).gnttab();
    let page = g.alloc_page().unwrap();
    g.grant(&page, 2, false).unwrap();
    g.free_page(page);
}
