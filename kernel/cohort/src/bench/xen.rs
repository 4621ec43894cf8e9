//! Xen benchmarks: the hypercall round trip in one guest; between two
//! guests, mapping and unmapping the peer's grant, and event-channel
//! ping-pong (notify → the peer's handler wakes its waiting thread → notify
//! back), half the round trip reported.

use super::median;
use crate::platform::xen::events::{self, XenEvents};
use crate::platform::xen::grants::XenGrants;
use crate::platform::xen::peer::{await_key, peer_domid, publish_to, SECOND};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use cohort_boot::cmdline::BenchClock;
use figures::Figure;
use xen_proto::iface::{EventChannels, GrantTable};

const HYPERCALLS: u64 = 2000;
const GRANT_ROUNDS: usize = 200;
const PING_ROUNDS: usize = 500;

fn emit(name: &str, value: f64, unit: &str, clock: BenchClock) {
    crate::println!("{}", Figure { name, path: "xen", value, unit, clock: clock.as_str() });
}

pub fn primitives(clock: BenchClock) -> Result<(), String> {
    let t0 = crate::clock::now_ns();
    for _ in 0..HYPERCALLS {
        ::xen_abi::hypercall::xen_version().map_err(|e| format!("xen_version: {e}"))?;
    }
    let per_call = (crate::clock::now_ns() - t0) as f64 / HYPERCALLS as f64;
    emit("xen.hypercall_round_trip", per_call, "ns", clock);

    Ok(())
}

pub fn ping(clock: BenchClock) -> Result<(), String> {
    let peer = peer_domid()?;
    let mut ev = XenEvents;
    let mut gt = XenGrants;
    let page = gt.alloc_page().map_err(|e| format!("alloc_page: {e:?}"))?;
    let gref = gt.grant(&page, peer, true).map_err(|e| format!("grant: {e:?}"))?;
    publish_to(peer, "data/ping/gref", &gref.to_string())?;
    let port = ev.alloc_unbound(peer).map_err(|e| format!("alloc_unbound: {e:?}"))?;
    publish_to(peer, "data/ping/rounds", &PING_ROUNDS.to_string())?;
    publish_to(peer, "data/ping/port", &port.to_string())?;
    // The pong side notifies once when it has bound.
    if !events::wait_port(port, 30 * SECOND) {
        return Err(format!("domain {peer} never bound port {port}"));
    }
    events::take_pending(port);
    let mut samples = Vec::with_capacity(PING_ROUNDS);
    for round in 0..PING_ROUNDS {
        let t = crate::clock::now_ns();
        ev.notify(port).map_err(|e| format!("notify: {e:?}"))?;
        if !events::wait_port(port, 30 * SECOND) {
            return Err(format!("no answer to ping {round}"));
        }
        events::take_pending(port);
        samples.push(crate::clock::now_ns() - t);
    }
    ev.close(port).map_err(|e| format!("close: {e:?}"))?;
    // The pong side unmapped before its first answer.
    gt.revoke(gref).map_err(|e| format!("revoke: {e:?}"))?;
    gt.free_page(page);
    let rtt = median(&mut samples);
    emit("evtchn.ping_pong_round_trip", rtt as f64, "ns", clock);
    emit("evtchn.notify_to_remote_handler", rtt as f64 / 2.0, "ns", clock);
    Ok(())
}

pub fn pong(clock: BenchClock) -> Result<(), String> {
    let peer = peer_domid()?;
    let base = format!("/local/domain/{peer}/data/ping");
    let rounds: usize = await_key(&format!("{base}/rounds"), 30 * SECOND)?.parse().map_err(|_| "bad rounds")?;
    let port: u32 = await_key(&format!("{base}/port"), 30 * SECOND)?.parse().map_err(|_| "bad port")?;
    let gref: u32 = await_key(&format!("{base}/gref"), 30 * SECOND)?.parse().map_err(|_| "bad gref")?;
    let mut gt = XenGrants;
    let mut samples = Vec::with_capacity(GRANT_ROUNDS);
    for round in 0..GRANT_ROUNDS {
        let t = crate::clock::now_ns();
        let mapped = gt.map(peer, gref, true).map_err(|e| format!("map (round {round}): {e:?}"))?;
        gt.unmap(mapped).map_err(|e| format!("unmap: {e:?}"))?;
        samples.push(crate::clock::now_ns() - t);
    }
    emit("xen.grant_map_unmap", median(&mut samples) as f64, "ns", clock);
    let mut ev = XenEvents;
    let local = ev.bind_interdomain(peer, port).map_err(|e| format!("bind_interdomain: {e:?}"))?;
    events::drain_bind_event(local);
    ev.notify(local).map_err(|e| format!("notify: {e:?}"))?;
    for round in 0..rounds {
        if !events::wait_port(local, 60 * SECOND) {
            return Err(format!("no ping {round} from domain {peer}"));
        }
        events::take_pending(local);
        ev.notify(local).map_err(|e| format!("notify: {e:?}"))?;
    }
    crate::println!("pong: answered {rounds} pings from domain {peer}");
    ev.close(local).map_err(|e| format!("close: {e:?}"))?;
    Ok(())
}
