//! `cohort-discoveryd`, the dom0 side of residency discovery.
//!
//! It watches xenstore for Cohort guests' adverts (see the `discovery`
//! crate), accepts a guest whose advertised MAC is one of the vifs dom0's
//! backend holds for it, and publishes for each accepted guest the others
//! of its group at `/local/domain/0/cohort/peers/<domid>`, owned by dom0
//! and readable by that guest only. A guest that leaves, is destroyed or
//! withdraws its advert disappears from every list at the next scan, which
//! any relevant watch event (and a periodic timer) triggers.
//!
//! - [`store`]: the xenstore operations the daemon needs, and the client
//!   over xenstored's Unix socket.
//! - [`scan`]: one scan: read adverts and vifs, group, publish the changes.
//! - [`run`]: the loop: connect, watch, scan; reconnect when xenstored goes.
//! - [`policy`]: dom0's group policy file, which makes dom0, not the
//!   guest's advert, decide its group.
//! - [`bench`]: the `BENCH` line `--once` prints for its scan.
//! - [`cli`]: the command line.

pub mod bench;
pub mod cli;
pub mod policy;
pub mod run;
pub mod scan;
pub mod store;
