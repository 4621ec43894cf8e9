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

/// Nodes the frontend writes under its own directory, with their
/// meaning. Removed again on shutdown.
pub const PUBLISHED_KEYS: [&str; 6] = [
    "tx-ring-ref",
    "rx-ring-ref",
    "event-channel",
    // We only implement the copying receive path.
    "request-rx-copy",
    // We kick the backend when posting rx buffers (netif.h: required
    // for the backend to queue packets safely).
    "feature-rx-notify",
    // We neither send nor accept packets with a blank checksum: the
    // stack (smoltcp) computes and verifies every checksum.
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

fn read_node<R: XenstoreRing>(
    c: &mut Client<R>,
    dir: &str,
    key: &'static str,
) -> Result<alloc::vec::Vec<u8>, Error> {
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
    let backend_id = parse_u32(&id)
        .and_then(|n| DomId::try_from(n).ok())
        .ok_or(Error::BadNode("backend-id"))?;
    let mac = parse_mac(&read_node(c, frontend, "mac")?).ok_or(Error::BadNode("mac"))?;
    Ok(VifNodes {
        frontend: String::from(frontend),
        backend,
        backend_id,
        mac,
    })
}

/// Whether the backend advertises `feature-rx-copy = 1` (missing = 0).
pub fn backend_has_rx_copy<R: XenstoreRing>(
    c: &mut Client<R>,
    backend: &str,
) -> Result<bool, Error> {
    match c.read(&format!("{backend}/feature-rx-copy")) {
        Ok(v) => Ok(parse_u32(&v) == Some(1)),
        Err(xen_proto::Error::Xs(XsError::Enoent)) => Ok(false),
        Err(e) => Err(e.into()),
    }
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
}

/// Writes [`PUBLISHED_KEYS`] and `state = Connected` in one transaction,
/// redone on `EAGAIN`.
pub fn publish<R: XenstoreRing>(
    c: &mut Client<R>,
    frontend: &str,
    p: &Published,
) -> Result<(), Error> {
    let values = [
        format!("{}", p.tx_ring_ref),
        format!("{}", p.rx_ring_ref),
        format!("{}", p.event_channel),
        String::from("1"),
        String::from("1"),
        String::from("1"),
    ];
    let state = XenbusState::Connected.to_value();
    c.transaction(|tx| {
        for (k, v) in PUBLISHED_KEYS.iter().zip(values.iter()) {
            tx.write(&format!("{frontend}/{k}"), v.as_bytes())?;
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
