//! Finding a peer guest through xenstore, for the multi-guest tests and
//! benchmarks: the harness writes each guest's `data/peer`, and the guests
//! publish what the other needs under their own `data/`.

use super::{with_xenstore, Xenstore};
use alloc::format;
use alloc::string::{String, ToString};
use xen_proto::iface::DomId;

pub use crate::clock::{sleep, SECOND};

pub fn store<T>(f: impl FnOnce(&mut Xenstore) -> Result<T, xen_proto::Error>) -> Result<T, String> {
    with_xenstore(f).ok_or("no xenstore client")?.map_err(|e| e.to_string())
}

pub fn own_domid() -> Result<DomId, String> {
    let text = store(|c| c.read_string("domid"))?;
    text.parse().map_err(|_| format!("domid `{text}` is not a number"))
}

/// Reads `path` until it exists (another guest writes it), up to `timeout`.
pub fn await_key(path: &str, timeout: u64) -> Result<String, String> {
    let deadline = crate::clock::now_ns() + timeout;
    loop {
        match store(|c| c.read_string(path)) {
            Ok(value) => return Ok(value),
            Err(e) if crate::clock::now_ns() > deadline => return Err(format!("waiting for {path}: {e}")),
            Err(_) => sleep(SECOND / 20),
        }
    }
}

/// The peer's domid, which the harness writes to our `data/peer`.
pub fn peer_domid() -> Result<DomId, String> {
    let text = await_key("data/peer", 30 * SECOND)?;
    text.parse().map_err(|_| format!("data/peer `{text}` is not a domid"))
}

/// Publishes `value` at our `key` so that only `peer` (besides us) reads it.
pub fn publish_to(peer: DomId, key: &str, value: &str) -> Result<(), String> {
    use xenstore_wire::{Access, Permission};
    let me = own_domid()?;
    let perms = [Permission::new(me, Access::None), Permission::new(peer, Access::Read)];
    store(|c| c.write(key, value.as_bytes()))?;
    store(|c| c.set_perms(key, &perms))
}
