//! netfront on Cohort's Xen platform: connecting the first vif, its
//! counters, connecting it again, and closing it.

use super::events::XenEvents;
use super::grants::NetfrontGrants;
use crate::clock::SECOND;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use cohort_boot::cmdline::Offload;
use netfront::{Config, Netfront, Offloads};

pub type XenNet = Netfront<NetfrontGrants, XenEvents>;

/// The first vif the toolstack gave us.
const VIF: &str = "device/vif/0";

/// Connects the first vif, asking for the offloads of `net.offload=`.
pub fn open(offload: Offload) -> Result<XenNet, String> {
    let offloads = Offloads { sg: offload.sg, csum: offload.csum, gso: offload.gso };
    let config = Config { offloads, ..Config::default() };
    let connected = super::with_xenstore(|c| Netfront::connect_with(c, NetfrontGrants, XenEvents, VIF, config, 30 * SECOND));
    match connected {
        None => Err("no xenstore client".into()),
        Some(Ok(nf)) => {
            log::info!("netfront: offloads {}", offloads_line(&nf));
            let n = nf.negotiated();
            let (tx, rx) = (offload_names(n.tx), offload_names(n.rx));
            crate::println!("{}", figures::Event::Offloads { device: "netfront", tx: tx.as_str(), rx: rx.as_str() });
            let m = nf.mac();
            let mac = format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]);
            crate::println!("{}", figures::Event::NetDevice { device: "netfront", mac: &mac, link_up: true });
            Ok(nf)
        }
        Some(Err(e)) => Err(format!("netfront on {VIF}: {e:?} (does the xl config have vif = [\"bridge=...\"]?)")),
    }
}

/// What each direction uses, e.g. `tx sg,csum,gso rx sg,csum,gso`.
pub fn offloads_line(nf: &XenNet) -> String {
    let n = nf.negotiated();
    format!("tx {} rx {}", offload_names(n.tx), offload_names(n.rx))
}

/// One direction's offloads: `sg,csum,gso`, or `none`.
fn offload_names(o: Offloads) -> String {
    let on: Vec<&str> = [("sg", o.sg), ("csum", o.csum), ("gso", o.gso)].iter().filter(|(_, on)| *on).map(|(n, _)| *n).collect();
    if on.is_empty() {
        String::from("none")
    } else {
        on.join(",")
    }
}

pub fn counters_line(nf: &XenNet) -> String {
    let c = Netfront::counters(nf);
    format!(
        "netfront: tx {} frames {} bytes ({} GSO, {} checksums offloaded, {} slots), rx {} frames {} bytes ({} GSO, {} of several slots), \
         notifications sent {} received {}, drops tx {:?} rx {:?}, bad responses {:?}, restarts {}",
        c.tx_frames,
        c.tx_bytes,
        c.tx_gso_packets,
        c.tx_csum_offloaded,
        c.tx_slots,
        c.rx_frames,
        c.rx_bytes,
        c.rx_gso_packets,
        c.rx_multi_slot,
        c.notifications_sent,
        c.notifications_received,
        c.tx_drops,
        c.rx_drops,
        c.bad_responses,
        c.restarts
    )
}

pub fn figures(nf: &XenNet) -> Vec<(&'static str, f64, &'static str)> {
    let c = Netfront::counters(nf);
    let per = |n: u64, frames: u64| n as f64 / frames.max(1) as f64;
    alloc::vec![
        ("netfront.notifications_sent_per_tx_frame", per(c.notifications_sent, c.tx_frames), "ratio"),
        ("netfront.notifications_received_per_rx_frame", per(c.notifications_received, c.rx_frames), "ratio"),
    ]
}

/// Disconnects netfront and connects it again (see `Netfront::restart`).
pub fn restart(nf: &mut XenNet) -> Result<(), String> {
    match super::with_xenstore(|c| Netfront::restart(nf, c, 30 * SECOND)) {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(format!("{e:?}")),
        None => Err("no xenstore client".into()),
    }
}

/// Closes netfront for good (backend Closed, every grant back).
pub fn close(nf: &mut XenNet) -> Result<String, String> {
    match super::with_xenstore(|c| Netfront::close(nf, c, 30 * SECOND)) {
        Some(Ok(())) => Ok(String::from("netfront: closed (backend Closed)")),
        Some(Err(e)) => Err(format!("netfront shutdown: {e:?}")),
        None => Err("no xenstore client".into()),
    }
}
