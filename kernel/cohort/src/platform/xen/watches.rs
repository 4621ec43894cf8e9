//! Watch events of the one xenstore client, sorted by token: each user
//! (`xl shutdown` control, residency discovery, channels) takes its own
//! and never sees, or loses, anyone else's.

use super::Xenstore;
use alloc::string::String;
use alloc::vec::Vec;
use xenstore_wire::WatchEvent;

/// Events kept for tokens nobody has asked about yet; beyond this the
/// oldest go (a stuck consumer must not grow the heap without bound).
const KEPT: usize = 256;

static QUEUE: spin::Mutex<Vec<WatchEvent>> = spin::Mutex::new(Vec::new());

/// The paths of the events for `token` that arrived since the last call.
/// At most [`KEPT`] events are taken from the client per call: xenstored
/// sending events as fast as we read them cannot keep us here (the rest
/// wait for the next call, or are dropped by the client's own bound).
pub fn take(client: &mut Xenstore, token: &str) -> Vec<String> {
    let mut queue = QUEUE.lock();
    for _ in 0..KEPT {
        let Ok(Some(event)) = client.next_watch_event() else { break };
        if queue.len() == KEPT {
            queue.remove(0);
        }
        queue.push(event);
    }
    let mut paths = Vec::new();
    queue.retain(|e| {
        if e.token == token {
            paths.push(e.path.clone());
            false
        } else {
            true
        }
    });
    paths
}
