//! The peer list dom0 publishes for one guest, and the grouping rule.
//!
//! Value format: `v1` followed by one `domid=mac` word per peer, in domid
//! order: `v1 3=00:16:3e:c0:00:11 7=00:16:3e:c0:00:12`. `v1` alone is an
//! empty list.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use xen_proto::iface::DomId;
use xen_proto::values::{parse_mac, parse_u32, Mac};

use crate::{Group, MAX_PEERS};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Peer {
    pub domid: DomId,
    pub mac: [u8; 6],
}

/// At most [`MAX_PEERS`] peers, sorted by domid, each domid once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerList {
    peers: Vec<Peer>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeerListError {
    /// Not `v1 ...`.
    #[error("not a version-1 peer list")]
    Version,
    #[error("not `domid=mac` words")]
    Malformed,
    #[error("more peers than allowed")]
    TooMany,
    /// Not in ascending domid order, or a domid twice.
    #[error("peers not in ascending domid order")]
    Unordered,
}

impl PeerList {
    /// The first [`MAX_PEERS`] of `peers` by domid (duplicates dropped);
    /// the second value says how many were left out.
    pub fn new(mut peers: Vec<Peer>) -> (PeerList, usize) {
        peers.sort();
        peers.dedup_by_key(|p| p.domid);
        let left_out = peers.len().saturating_sub(MAX_PEERS);
        peers.truncate(MAX_PEERS);
        (PeerList { peers }, left_out)
    }

    pub fn peers(&self) -> &[Peer] {
        &self.peers
    }

    pub fn get(&self, domid: DomId) -> Option<&Peer> {
        self.peers.iter().find(|p| p.domid == domid)
    }

    pub fn to_value(&self) -> String {
        let mut s = String::from("v1");
        for p in &self.peers {
            s.push_str(&alloc::format!(" {}={}", p.domid, Mac(p.mac)));
        }
        s
    }

    pub fn parse(value: &[u8]) -> Result<PeerList, PeerListError> {
        let value = value.strip_suffix(&[0]).unwrap_or(value);
        let text = core::str::from_utf8(value).map_err(|_| PeerListError::Malformed)?;
        let mut words = text.split(' ');
        if words.next() != Some("v1") {
            return Err(PeerListError::Version);
        }
        let mut peers: Vec<Peer> = Vec::new();
        for word in words {
            if peers.len() == MAX_PEERS {
                return Err(PeerListError::TooMany);
            }
            let (id, mac) = word.split_once('=').ok_or(PeerListError::Malformed)?;
            let domid = parse_u32(id.as_bytes()).and_then(|d| DomId::try_from(d).ok()).ok_or(PeerListError::Malformed)?;
            let mac = parse_mac(mac.as_bytes()).ok_or(PeerListError::Malformed)?;
            if peers.last().is_some_and(|last| last.domid >= domid) {
                return Err(PeerListError::Unordered);
            }
            peers.push(Peer { domid, mac });
        }
        Ok(PeerList { peers })
    }
}

/// A guest dom0 accepted: its advert parsed and its MAC is one of the vifs
/// the toolstack gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub domid: DomId,
    pub group: Group,
    pub mac: [u8; 6],
}

/// For every member, the other members of its group (bounded, see
/// [`PeerList::new`]); the second map counts peers left out per guest.
pub fn peer_lists(members: &[Member]) -> (BTreeMap<DomId, PeerList>, BTreeMap<DomId, usize>) {
    let mut lists = BTreeMap::new();
    let mut left_out = BTreeMap::new();
    for m in members {
        let peers = members
            .iter()
            .filter(|o| o.domid != m.domid && o.group == m.group)
            .map(|o| Peer { domid: o.domid, mac: o.mac })
            .collect();
        let (list, n) = PeerList::new(peers);
        lists.insert(m.domid, list);
        if n > 0 {
            left_out.insert(m.domid, n);
        }
    }
    (lists, left_out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn member(domid: DomId, group: &str) -> Member {
        Member { domid, group: Group::new(group).unwrap(), mac: [0, 0x16, 0x3e, 0, 0, domid as u8] }
    }

    #[test]
    fn round_trip() {
        let (list, _) = PeerList::new(vec![
            Peer { domid: 7, mac: [0, 0x16, 0x3e, 0xc0, 0, 0x12] },
            Peer { domid: 3, mac: [0, 0x16, 0x3e, 0xc0, 0, 0x11] },
        ]);
        assert_eq!(list.to_value(), "v1 3=00:16:3e:c0:00:11 7=00:16:3e:c0:00:12");
        assert_eq!(PeerList::parse(list.to_value().as_bytes()), Ok(list));
        assert_eq!(PeerList::parse(b"v1"), Ok(PeerList::default()));
    }

    #[test]
    fn error_messages() {
        use alloc::string::ToString;
        let all = [
            (PeerListError::Version, "not a version-1 peer list"),
            (PeerListError::Malformed, "not `domid=mac` words"),
            (PeerListError::TooMany, "more peers than allowed"),
            (PeerListError::Unordered, "peers not in ascending domid order"),
        ];
        for (e, message) in all {
            assert_eq!(e.to_string(), message);
        }
    }

    #[test]
    fn rejected() {
        assert_eq!(PeerList::parse(b"v2 3=00:16:3e:c0:00:11"), Err(PeerListError::Version));
        assert_eq!(PeerList::parse(b""), Err(PeerListError::Version));
        assert_eq!(PeerList::parse(b"v1 3"), Err(PeerListError::Malformed));
        assert_eq!(PeerList::parse(b"v1 70000=00:16:3e:c0:00:11"), Err(PeerListError::Malformed));
        assert_eq!(PeerList::parse(b"v1 3=00:16:3e:c0:00:11  5=00:16:3e:c0:00:11"), Err(PeerListError::Malformed));
        assert_eq!(PeerList::parse(b"v1 5=00:16:3e:c0:00:11 3=00:16:3e:c0:00:12"), Err(PeerListError::Unordered));
        assert_eq!(PeerList::parse(b"v1 3=00:16:3e:c0:00:11 3=00:16:3e:c0:00:12"), Err(PeerListError::Unordered));
        let too_many: String = (1..=MAX_PEERS + 1).map(|d| alloc::format!(" {d}=00:16:3e:00:00:01")).collect();
        assert_eq!(PeerList::parse(alloc::format!("v1{too_many}").as_bytes()), Err(PeerListError::TooMany));
    }

    #[test]
    fn groups() {
        let members = [member(1, "a"), member(2, "b"), member(3, "a"), member(4, "a")];
        let (lists, left_out) = peer_lists(&members);
        let ids = |d: DomId| lists[&d].peers().iter().map(|p| p.domid).collect::<Vec<_>>();
        assert_eq!(ids(1), [3, 4]);
        assert_eq!(ids(3), [1, 4]);
        assert_eq!(ids(2), [] as [DomId; 0]);
        assert!(left_out.is_empty());
        assert_eq!(lists[&4].get(1).map(|p| p.mac), Some(members[0].mac));
    }

    #[test]
    fn bounded() {
        let members: Vec<Member> = (1..=MAX_PEERS as DomId + 3).map(|d| member(d, "big")).collect();
        let (lists, left_out) = peer_lists(&members);
        assert!(lists.values().all(|l| l.peers().len() == MAX_PEERS));
        assert_eq!(left_out[&1], 2);
        // The lowest domids are kept.
        assert_eq!(lists[&1].peers().last().map(|p| p.domid), Some(MAX_PEERS as DomId + 1));
    }
}
