//! netfront as Cohort's network device on Xen.

use super::events::XenEvents;
use super::grants::{self, XenGrants};
use super::peer::SECOND;
use alloc::format;
use alloc::string::String;
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

impl crate::net::NetDevice for XenNet {
    fn mac(&self) -> [u8; 6] {
        Netfront::mac(self)
    }

    fn kind(&self) -> &'static str {
        "netfront"
    }

    fn service(&mut self) {
        self.handle_event();
        self.poll();
    }

    fn counters(&self) -> String {
        let c = Netfront::counters(self);
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

    fn figures(&self) -> alloc::vec::Vec<(&'static str, f64, &'static str)> {
        let c = Netfront::counters(self);
        let per = |n: u64, frames: u64| n as f64 / frames.max(1) as f64;
        alloc::vec![
            ("netfront.notifications_sent_per_tx_frame", per(c.notifications_sent, c.tx_frames), "ratio"),
            ("netfront.notifications_received_per_rx_frame", per(c.notifications_received, c.rx_frames), "ratio"),
        ]
    }

    fn shutdown(&mut self) -> Result<String, String> {
        let closed = super::with_xenstore(|c| Netfront::close(self, c, 30 * SECOND));
        match closed {
            Some(Ok(())) => {
                let (refs, mapped, pages) = grants::in_use();
                let how = format!("netfront: closed (backend Closed); grant refs in use {refs}, mapped {mapped}, pages {pages}");
                if refs == 0 && mapped == 0 && pages == 0 {
                    Ok(how)
                } else {
                    Err(how)
                }
            }
            Some(Err(e)) => Err(format!("netfront shutdown: {e:?}")),
            None => Err("no xenstore client".into()),
        }
    }
}
