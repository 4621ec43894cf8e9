//! The netfront side of the xenstore handshake, over xen-proto's client.
//!
//! Keys follow `xen/io/netif.h` and what Linux netback reads. The order
//! follows Linux netfront and Mini-OS, which is what Linux netback
//! requires: netback maps the rings when the *frontend* turns
//! `Connected` (it ignores `Initialised` and treats a frontend in
//! `InitWait` as fatal), so the details and `state = Connected` are
//! published together in one transaction, after the backend reached
//! `InitWait`, and only then do we wait for the backend's `Connected`.

use alloc::format;
use alloc::string::String;

use xen_proto::iface::{DomId, GrantRef, Port, XenstoreRing};
use xen_proto::xenbus::XenbusState;
use xen_proto::xenstore::Client;
use xenstore_wire::XsError;

use crate::error::Error;
use crate::features::{BackendOffers, Offloads};

/// Nodes the frontend may write under its own directory, removed again
/// on shutdown.
pub const PUBLISHED_KEYS: [&str; 8] = [
    "tx-ring-ref",
    "rx-ring-ref",
    "event-channel",
    // We only implement the copying receive path. Linux netback reads no
    // other feature key of ours without it.
    "request-rx-copy",
    // We kick the backend when posting rx buffers (netif.h: required
    // for the backend to queue packets safely).
    "feature-rx-notify",
    // Packets of several slots on the receive ring.
    "feature-sg",
    // GSO packets on the receive ring (Linux sends them only with SG
    // and checksum offload).
    "feature-gso-tcpv4",
    // Written (as 1) only with checksum offload off: then dom0 completes
    // every checksum before handing us a frame.
    "feature-no-csum-offload",
];

/// What the toolstack wrote about our vif.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VifNodes {
    /// Our directory (as passed, relative or absolute).
    pub frontend: String,
    /// The backend's directory (absolute).
    pub backend: String,
    /// The backend's domain.
    pub backend_id: DomId,
    /// Our MAC address.
    pub mac: [u8; 6],
}

pub use xen_proto::values::{parse_mac, parse_u32};

fn read_node<R: XenstoreRing>(c: &mut Client<R>, dir: &str, key: &'static str) -> Result<alloc::vec::Vec<u8>, Error> {
    match c.read(&format!("{dir}/{key}")) {
        Ok(v) => Ok(v),
        Err(xen_proto::Error::Xs(XsError::Enoent)) => Err(Error::BadNode(key)),
        Err(e) => Err(e.into()),
    }
}

/// Reads `backend`, `backend-id` and `mac` under `frontend`.
pub fn read_vif<R: XenstoreRing>(c: &mut Client<R>, frontend: &str) -> Result<VifNodes, Error> {
    let backend = read_node(c, frontend, "backend")?;
    let backend = String::from_utf8(backend).map_err(|_| Error::BadNode("backend"))?;
    let backend = String::from(backend.trim_end_matches('\0'));
    if !backend.starts_with('/') {
        return Err(Error::BadNode("backend"));
    }
    let id = read_node(c, frontend, "backend-id")?;
    let backend_id = parse_u32(&id).and_then(|n| DomId::try_from(n).ok()).ok_or(Error::BadNode("backend-id"))?;
    let mac = parse_mac(&read_node(c, frontend, "mac")?).ok_or(Error::BadNode("mac"))?;
    Ok(VifNodes { frontend: String::from(frontend), backend, backend_id, mac })
}

/// Whether the backend's `key` is 1 (missing = 0, anything else = 0).
fn backend_flag<R: XenstoreRing>(c: &mut Client<R>, backend: &str, key: &str) -> Result<bool, Error> {
    match c.read(&format!("{backend}/{key}")) {
        Ok(v) => Ok(parse_u32(&v) == Some(1)),
        Err(xen_proto::Error::Xs(XsError::Enoent)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Whether the backend advertises `feature-rx-copy = 1` (missing = 0).
pub fn backend_has_rx_copy<R: XenstoreRing>(c: &mut Client<R>, backend: &str) -> Result<bool, Error> {
    backend_flag(c, backend, "feature-rx-copy")
}

/// What the backend accepts on our transmit ring.
pub fn backend_offers<R: XenstoreRing>(c: &mut Client<R>, backend: &str) -> Result<BackendOffers, Error> {
    Ok(BackendOffers {
        sg: backend_flag(c, backend, "feature-sg")?,
        gso_tcpv4: backend_flag(c, backend, "feature-gso-tcpv4")?,
        no_csum_offload: backend_flag(c, backend, "feature-no-csum-offload")?,
    })
}

/// What we publish for the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Published {
    /// Grant of the tx ring page.
    pub tx_ring_ref: GrantRef,
    /// Grant of the rx ring page.
    pub rx_ring_ref: GrantRef,
    /// Our unbound port for the backend.
    pub event_channel: Port,
    /// What we accept on the receive ring.
    pub rx: Offloads,
}

/// Writes [`PUBLISHED_KEYS`] (`feature-no-csum-offload` only when checksum
/// offload is off) and `state = Connected` in one transaction, redone on
/// `EAGAIN`.
pub fn publish<R: XenstoreRing>(c: &mut Client<R>, frontend: &str, p: &Published) -> Result<(), Error> {
    let flag = |on: bool| String::from(if on { "1" } else { "0" });
    let values = [
        Some(format!("{}", p.tx_ring_ref)),
        Some(format!("{}", p.rx_ring_ref)),
        Some(format!("{}", p.event_channel)),
        Some(flag(true)),
        Some(flag(true)),
        Some(flag(p.rx.sg)),
        Some(flag(p.rx.gso)),
        (!p.rx.csum).then(|| flag(true)),
    ];
    let state = XenbusState::Connected.to_value();
    c.transaction(|tx| {
        for (k, v) in PUBLISHED_KEYS.iter().zip(values.iter()) {
            let path = format!("{frontend}/{k}");
            match v {
                Some(v) => tx.write(&path, v.as_bytes())?,
                // Not left over from an earlier connection either.
                None => match tx.rm(&path) {
                    Ok(()) | Err(xen_proto::Error::Xs(XsError::Enoent)) => {}
                    Err(e) => return Err(e),
                },
            }
        }
        tx.write(&format!("{frontend}/state"), state.as_bytes())
    })?;
    Ok(())
}

/// Removes [`PUBLISHED_KEYS`] (missing ones are fine), so a later
/// backend never sees stale grant refs.
pub fn unpublish<R: XenstoreRing>(c: &mut Client<R>, frontend: &str) -> Result<(), Error> {
    c.transaction(|tx| {
        for k in PUBLISHED_KEYS {
            match tx.rm(&format!("{frontend}/{k}")) {
                Ok(()) | Err(xen_proto::Error::Xs(XsError::Enoent)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })?;
    Ok(())
}
