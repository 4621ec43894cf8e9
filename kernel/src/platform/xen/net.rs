//! netfront on Cohort's Xen platform: connecting the first vif, its
//! counters, and closing it.

use super::events::XenEvents;
use super::grants::XenGrants;
use crate::clock::SECOND;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use netfront::Netfront;

pub type XenNet = Netfront<XenGrants, XenEvents>;

/// The first vif the toolstack gave us.
const VIF: &str = "device/vif/0";

pub fn open() -> Result<XenNet, String> {
    let connected = super::with_xenstore(|c| Netfront::connect(c, XenGrants, XenEvents, VIF, 30 * SECOND));
    match connected {
        None => Err("no xenstore client".into()),
        Some(Ok(nf)) => Ok(nf),
        Some(Err(e)) => Err(format!("netfront on {VIF}: {e:?} (does the xl config have vif = [\"bridge=...\"]?)")),
    }
}

pub fn counters_line(nf: &XenNet) -> String {
    let c = Netfront::counters(nf);
    format!(
        "netfront: tx {} frames {} bytes, rx {} frames {} bytes, notifications sent {} received {}, \
         drops tx {:?} rx {:?}, bad responses {:?}",
        c.tx_frames,
        c.tx_bytes,
        c.rx_frames,
        c.rx_bytes,
        c.notifications_sent,
        c.notifications_received,
        c.tx_drops,
        c.rx_drops,
        c.bad_responses
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

/// Closes netfront for good (backend Closed, every grant back).
pub fn close(nf: &mut XenNet) -> Result<String, String> {
    match super::with_xenstore(|c| Netfront::close(nf, c, 30 * SECOND)) {
        Some(Ok(())) => Ok(String::from("netfront: closed (backend Closed)")),
        Some(Err(e)) => Err(format!("netfront shutdown: {e:?}")),
        None => Err("no xenstore client".into()),
    }
}
