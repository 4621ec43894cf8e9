//! Residency discovery, the part both sides agree on.
//!
//! A Cohort guest writes an [`Advert`] to its own xenstore home
//! (`data/cohort/advert`): protocol version, group name, MAC, IPv4. The dom0
//! daemon (`cohort-discoveryd`) reads every guest's advert, checks the MAC
//! against the vifs the toolstack created (which only dom0 can write), and
//! publishes for each guest the co-resident guests of the same group as a
//! [`PeerList`] at [`peers_path`]: a node only dom0 writes and only that
//! guest (besides dom0) reads. [`peer_lists`] is the grouping rule.
//! With a [`Policy`] (a file dom0 keeps), a guest's group is dom0's
//! choice, found by the domain's toolstack-written name or UUID; the
//! advert's group must agree with it.
//!
//! Everything here parses input from other domains: lengths are bounded,
//! characters checked, and every failure is an error value.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod advert;
mod peers;
mod policy;

pub use advert::{Advert, AdvertError, Group};
pub use peers::{peer_lists, Member, Peer, PeerList, PeerListError};
pub use policy::{parse_uuid, uuid_of_vm_path, LineError, Policy, PolicyError, MAX_NAME_LEN, MAX_POLICY_ENTRIES, MAX_POLICY_LEN};

use alloc::format;
use alloc::string::String;
use xen_proto::iface::DomId;

/// The discovery and channel protocol version this code speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// Where a guest advertises itself, relative to its xenstore home.
pub const ADVERT_KEY: &str = "data/cohort/advert";
/// Where dom0 publishes the peer lists, one node per guest.
pub const PEERS_DIR: &str = "/local/domain/0/cohort/peers";
/// Peers listed for one guest at most: each costs the guest a channel
/// (pages, grants, a port), so the number is bounded on both sides.
pub const MAX_PEERS: usize = 8;

/// `/local/domain/<domid>/data/cohort/advert`.
pub fn advert_path(domid: DomId) -> String {
    format!("/local/domain/{domid}/{ADVERT_KEY}")
}

/// `/local/domain/0/cohort/peers/<domid>`.
pub fn peers_path(domid: DomId) -> String {
    format!("{PEERS_DIR}/{domid}")
}
