//! Tests of Cohort's Xen services, run inside a real Xen domain by the
//! harness (`tests/xen/`). The `grant_offer`/`grant_accept` pair is one
//! scenario across two guests that find each other through xenstore.

use crate::ensure;
use crate::platform::xen::{self as plat, events::XenEvents, grants::XenGrants};
use crate::testing::Outcome;
use alloc::format;
use alloc::string::{String, ToString};

use core::sync::atomic::{fence, Ordering};
use xen_proto::iface::{DomId, EventChannels, GrantTable, SharedPage, XenError};
use xenstore_wire::XsError;

use crate::platform::xen::peer::{await_key, own_domid, peer_domid as peer, publish_to, sleep, store, SECOND};

pub fn identity() -> Outcome {
    let domid = own_domid()?;
    let name = store(|c| c.read_string("name"))?;
    let version = plat::version().map_err(|e| format!("xen_version: {e}"))?;
    ensure!(domid > 0, "a domU has domid {domid}");
    ensure!(!name.is_empty(), "empty name");
    ensure!(version.major >= 4, "Xen {version}");
    crate::println!("    domid {domid}, name `{name}`, Xen {version}");
    Ok(())
}

pub fn xenstore_roundtrip() -> Outcome {
    store(|c| c.write("data/cohort-test/key", b"value-123"))?;
    let back = store(|c| c.read("data/cohort-test/key"))?;
    ensure!(back == b"value-123", "read back {back:?}");
    let list = store(|c| c.directory("data/cohort-test"))?;
    ensure!(list == ["key"], "directory lists {list:?}");
    let home = store(|c| {
        let domid = c.read_string("domid")?;
        c.get_domain_path(domid.parse().unwrap_or(0))
    })?;
    let absolute = store(|c| c.read_string(&format!("{home}/data/cohort-test/key")))?;
    ensure!(absolute == "value-123", "absolute path read {absolute}");
    store(|c| c.rm("data/cohort-test"))?;
    match plat::with_xenstore(|c| c.read("data/cohort-test/key")) {
        Some(Err(xen_proto::Error::Xs(XsError::Enoent))) => Ok(()),
        other => Err(format!("read after rm gave {other:?}")),
    }
}

pub fn xenstore_watch() -> Outcome {
    let path = "data/cohort-watch";
    store(|c| c.write(path, b"0"))?;
    store(|c| c.watch(path, "tok"))?;
    // xenstored fires every watch once when it is registered.
    let first = store(|c| c.wait_watch_event(5 * SECOND))?;
    ensure!(first.token == "tok" && first.path.ends_with(path), "first event {first:?}");
    store(|c| c.write(path, b"1"))?;
    let change = store(|c| c.wait_watch_event(5 * SECOND))?;
    ensure!(change.token == "tok" && change.path.ends_with(path), "change event {change:?}");
    store(|c| c.unwatch(path, "tok"))?;
    store(|c| c.rm(path))?;
    let after = store(|c| c.next_watch_event())?;
    ensure!(after.is_none(), "event after unwatch: {after:?}");
    Ok(())
}

pub fn event_loopback() -> Outcome {
    let me = own_domid()?;
    let mut ev = XenEvents;
    let a = ev.alloc_unbound(me).map_err(|e| format!("alloc_unbound: {e:?}"))?;
    let b = ev.bind_interdomain(me, a).map_err(|e| format!("bind_interdomain: {e:?}"))?;
    // Binding raises one event on the new port (Xen's convention); drop it
    // so each event below is the one the test sent.
    plat::events::drain_bind_event(b);
    plat::events::drain_bind_event(a);
    // Masked, an event stays pending in Xen and is not delivered; the
    // unmask hypercall delivers it.
    plat::events::set_masked(a, true);
    ev.notify(b).map_err(|e| format!("notify {b}: {e:?}"))?;
    sleep(SECOND / 20);
    ensure!(!ev.take_pending(a), "event delivered on masked port {a}");
    ::xen_abi::hypercall::evtchn_unmask(a).map_err(|e| format!("unmask: {e}"))?;
    let deadline = crate::clock::now_ns() + SECOND;
    while !ev.take_pending(a) {
        ensure!(crate::clock::now_ns() < deadline, "event on port {a} lost across mask/unmask");
        ev.wait(SECOND / 10);
    }
    for (from, to) in [(b, a), (a, b)] {
        ev.notify(from).map_err(|e| format!("notify {from}: {e:?}"))?;
        let deadline = crate::clock::now_ns() + SECOND;
        while !ev.take_pending(to) {
            ensure!(crate::clock::now_ns() < deadline, "no event on port {to} after notifying {from}");
            ev.wait(SECOND / 10);
        }
    }
    ev.close(b).map_err(|e| format!("close: {e:?}"))?;
    ev.close(a).map_err(|e| format!("close: {e:?}"))?;
    Ok(())
}

/// Grant refs on the real grant table: every ref can be handed out once,
/// exhaustion is an error, and revoking returns them all. (Mapping is
/// covered by the two-guest scenario: Xen 4.17 breaks a domain's own frame
/// when it maps and unmaps its own grant, so self-maps are never used.)
pub fn grant_refs() -> Outcome {
    let me = own_domid()?;
    let before = plat::grants::in_use();
    let mut gt = XenGrants;
    let page = gt.alloc_page().map_err(|e| format!("alloc_page: {e:?}"))?;
    let mut refs = alloc::vec::Vec::new();
    let exhausted = loop {
        match gt.grant(&page, me, true) {
            Ok(gref) => refs.push(gref),
            Err(e) => break e,
        }
        ensure!(refs.len() <= 1 << 16, "grant never ran out");
    };
    ensure!(exhausted == XenError::Exhausted, "running out gave {exhausted:?}");
    let mut sorted = refs.clone();
    sorted.sort_unstable();
    sorted.dedup();
    ensure!(sorted.len() == refs.len(), "a ref was handed out twice");
    ensure!(sorted[0] >= 8, "reserved ref {} handed out", sorted[0]);
    for gref in &refs {
        gt.revoke(*gref).map_err(|e| format!("revoke {gref}: {e:?}"))?;
    }
    ensure!(gt.revoke(refs[0]).is_err(), "a revoked ref was revoked again");
    gt.free_page(page);
    let after = plat::grants::in_use();
    ensure!(after == before, "grants in use {before:?} -> {after:?}");
    crate::println!("    {} grant refs handed out, then all revoked", refs.len());
    Ok(())
}

const ANSWER_AT: usize = 2048;

fn pattern(owner: DomId, i: usize) -> u8 {
    (i.wrapping_mul(7) as u8) ^ owner as u8
}

/// Grants a page and an unbound port to the peer, then waits for its answer.
pub fn grant_offer() -> Outcome {
    let (me, peer) = (own_domid()?, peer()?);
    let before = plat::grants::in_use();
    let (mut gt, mut ev) = (XenGrants, XenEvents);
    let page = gt.alloc_page().map_err(|e| format!("alloc_page: {e:?}"))?;
    let data: alloc::vec::Vec<u8> = (0..ANSWER_AT).map(|i| pattern(me, i)).collect();
    page.write_bytes(0, &data);
    let gref = gt.grant(&page, peer, false).map_err(|e| format!("grant: {e:?}"))?;
    let port = ev.alloc_unbound(peer).map_err(|e| format!("alloc_unbound: {e:?}"))?;
    // Only the peer may read the offer.
    publish_to(peer, "data/offer/gref", &gref.to_string())?;
    publish_to(peer, "data/offer/port", &port.to_string())?;
    crate::println!("    offered grant {gref} and port {port} to domain {peer}");
    ensure!(plat::events::wait_port(port, 30 * SECOND), "no notification from domain {peer}");
    plat::events::take_pending(port);
    let expected = format!("answer from domain {peer}");
    let mut answer = alloc::vec![0u8; expected.len()];
    page.read_bytes(ANSWER_AT, &mut answer);
    ensure!(answer == expected.as_bytes(), "answer {:?}", String::from_utf8_lossy(&answer));
    crate::println!("    notified; answer: {expected}");
    // The peer unmaps after notifying: retry while the grant is busy.
    let deadline = crate::clock::now_ns() + 10 * SECOND;
    while let Err(e) = gt.revoke(gref) {
        ensure!(crate::clock::now_ns() < deadline, "grant {gref} still busy: {e:?}");
        sleep(SECOND / 50);
    }
    ev.close(port).map_err(|e| format!("close: {e:?}"))?;
    gt.free_page(page);
    store(|c| c.rm("data/offer"))?;
    let after = plat::grants::in_use();
    ensure!(after == before, "grants in use {before:?} -> {after:?}");
    Ok(())
}

/// Maps the peer's grant, checks its pattern, answers and notifies.
pub fn grant_accept() -> Outcome {
    let peer = peer()?;
    let me = own_domid()?;
    let before = plat::grants::in_use();
    let offer = format!("/local/domain/{peer}/data/offer");
    let port: u32 = await_key(&format!("{offer}/port"), 30 * SECOND)?.parse().map_err(|_| "bad port")?;
    let gref: u32 = await_key(&format!("{offer}/gref"), 30 * SECOND)?.parse().map_err(|_| "bad gref")?;
    let (mut gt, mut ev) = (XenGrants, XenEvents);
    let mapped = gt.map(peer, gref, false).map_err(|e| format!("map grant {gref} of {peer}: {e:?}"))?;
    let mut data = alloc::vec![0u8; ANSWER_AT];
    mapped.read_bytes(0, &mut data);
    let bad = data.iter().enumerate().find(|&(i, &b)| b != pattern(peer, i));
    ensure!(bad.is_none(), "pattern differs at {bad:?}");
    mapped.write_bytes(ANSWER_AT, format!("answer from domain {me}").as_bytes());
    // Release: the answer is in the page before the peer is notified.
    fence(Ordering::Release);
    let local = ev.bind_interdomain(peer, port).map_err(|e| format!("bind_interdomain: {e:?}"))?;
    ev.notify(local).map_err(|e| format!("notify: {e:?}"))?;
    crate::println!("    mapped grant {gref} of domain {peer}, pattern ok, answered on port {local}");
    gt.unmap(mapped).map_err(|e| format!("unmap: {e:?}"))?;
    ev.close(local).map_err(|e| format!("close: {e:?}"))?;
    let after = plat::grants::in_use();
    ensure!(after == before, "grants in use {before:?} -> {after:?}");
    Ok(())
}
