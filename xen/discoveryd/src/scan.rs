//! One scan: which guests advertise, which adverts dom0 can vouch for, and
//! the peer lists that follow, published where they changed.
//!
//! Without a policy a guest's group is the one its advert names. With one
//! ([`Publisher::with_policy`]) it is the one the policy gives the domain's
//! name or UUID, read from the nodes the toolstack writes
//! (`/local/domain/<id>/name` and `/local/domain/<id>/vm`) and trusted only
//! if dom0 owns them; an advert naming another group, or a domain the
//! policy does not list, gets no list at all.

use std::collections::BTreeMap;
use std::path::PathBuf;

use discovery::{advert_path, peer_lists, peers_path, uuid_of_vm_path, Advert, Member, Policy, PEERS_DIR};
use xen_proto::iface::DomId;
use xen_proto::values::{parse_mac, parse_u32, Mac};

use crate::policy::PolicyFile;
use crate::store::{Result, Store};

/// Where dom0's netback keeps a guest's vifs; only dom0 writes here, so a
/// MAC found here is the guest's for real. (Guests whose vif backend is
/// another domain are not supported.)
fn vif_backend_dir(domid: DomId) -> String {
    format!("/local/domain/0/backend/vif/{domid}")
}

/// What one scan found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Domains looked at (every one in /local/domain but dom0).
    pub domains: usize,
    /// Guests accepted, with their group.
    pub members: Vec<(DomId, String)>,
    /// Lists written (domid, value).
    pub published: Vec<(DomId, String)>,
    /// Lists removed (the guest left, or was never a member).
    pub removed: Vec<DomId>,
    /// Guests whose advert was rejected, with why (only when the reason is
    /// new for that guest, so a bad advert is logged once, not per scan).
    pub rejected: Vec<(DomId, String)>,
    /// The policy file's state, when it changed (loaded, or unusable).
    pub policy: Option<String>,
}

impl Report {
    pub fn changed(&self) -> bool {
        !self.published.is_empty() || !self.removed.is_empty() || !self.rejected.is_empty() || self.policy.is_some()
    }
}

/// Where groups come from in one scan.
enum Groups {
    /// The adverts (no policy).
    Claimed,
    /// dom0's policy.
    Policy(Policy),
    /// The policy file is unusable: nobody is given a group.
    Unusable,
}

/// A node the toolstack writes for a domain, as far as dom0 can vouch
/// for it.
enum Toolstack {
    Missing,
    /// It exists, but dom0 does not own it: a guest could have written it.
    NotDom0s,
    Value(String),
}

impl Toolstack {
    fn value(&self) -> Option<&str> {
        match self {
            Toolstack::Value(v) => Some(v),
            _ => None,
        }
    }
}

impl std::fmt::Display for Toolstack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Toolstack::Missing => f.write_str("none"),
            Toolstack::NotDom0s => f.write_str("not dom0's"),
            Toolstack::Value(v) => f.write_str(v),
        }
    }
}

/// `path`'s value if dom0 owns the node (the toolstack wrote it; a guest
/// can neither write it nor take it over), as text.
fn toolstack_node<S: Store>(s: &mut S, path: &str) -> Result<Toolstack> {
    match s.owner(path)? {
        None => return Ok(Toolstack::Missing),
        Some(0) => {}
        Some(_) => return Ok(Toolstack::NotDom0s),
    }
    let Some(v) = s.read(path)? else { return Ok(Toolstack::Missing) };
    let v = v.strip_suffix(&[0]).unwrap_or(&v);
    Ok(std::str::from_utf8(v).map_or(Toolstack::NotDom0s, |t| Toolstack::Value(t.to_string())))
}

/// The daemon's memory between scans: what it published, and which bad
/// adverts it already reported.
#[derive(Default)]
pub struct Publisher {
    published: BTreeMap<DomId, String>,
    rejected: BTreeMap<DomId, String>,
    policy: Option<PolicyFile>,
}

impl Publisher {
    /// A publisher whose groups are dom0's: the policy at `path`, read
    /// again at every scan (see [`crate::policy`]).
    pub fn with_policy(path: PathBuf) -> Publisher {
        Publisher { policy: Some(PolicyFile::new(path)), ..Publisher::default() }
    }

    /// Forgets what was published (after reconnecting: xenstored may have
    /// lost or kept anything, so everything is written again).
    pub fn reset(&mut self) {
        self.published.clear();
    }

    /// The MACs of `domid`'s vifs, as dom0's backend directory has them.
    fn vif_macs<S: Store>(s: &mut S, domid: DomId) -> Result<Vec<[u8; 6]>> {
        let dir = vif_backend_dir(domid);
        let mut macs = Vec::new();
        for devid in s.directory(&dir)? {
            if let Some(mac) = s.read(&format!("{dir}/{devid}/mac"))?.and_then(|v| parse_mac(&v)) {
                macs.push(mac);
            }
        }
        Ok(macs)
    }

    /// The guest `domid` as a member, or why not (None: it does not
    /// advertise at all).
    fn member<S: Store>(s: &mut S, domid: DomId, groups: &Groups) -> Result<Option<std::result::Result<Member, String>>> {
        let Some(value) = s.read(&advert_path(domid))? else { return Ok(None) };
        let advert = match Advert::parse(&value) {
            Ok(a) => a,
            Err(e) => return Ok(Some(Err(format!("bad advert: {e}")))),
        };
        let macs = Self::vif_macs(s, domid)?;
        if !macs.contains(&advert.mac) {
            return Ok(Some(Err(format!("advertises MAC {}, which is not one of its vifs", Mac(advert.mac)))));
        }
        let group = match groups {
            Groups::Claimed => advert.group,
            Groups::Unusable => return Ok(Some(Err("no usable policy: no peers".into()))),
            Groups::Policy(policy) => {
                let home = format!("/local/domain/{domid}");
                let name = toolstack_node(s, &format!("{home}/name"))?;
                let vm = toolstack_node(s, &format!("{home}/vm"))?;
                let uuid = vm.value().and_then(|v| uuid_of_vm_path(v.as_bytes()));
                match policy.group_of(name.value(), uuid.as_deref()) {
                    None => {
                        let uuid = uuid.unwrap_or_else(|| vm.to_string());
                        return Ok(Some(Err(format!(
                            "not in the policy (name {name}, uuid {uuid}; advertises group {}): no peers",
                            advert.group
                        ))));
                    }
                    Some(given) if *given != advert.group => {
                        return Ok(Some(Err(format!(
                            "advertises group {}, but the policy gives it {given}: no peers",
                            advert.group
                        ))));
                    }
                    Some(given) => given.clone(),
                }
            }
        };
        Ok(Some(Ok(Member { domid, group, mac: advert.mac })))
    }

    /// Scans every domain and publishes what changed.
    pub fn scan<S: Store>(&mut self, s: &mut S) -> Result<Report> {
        let mut report = Report::default();
        let groups = match &mut self.policy {
            None => Groups::Claimed,
            Some(file) => {
                let (policy, news) = file.load();
                report.policy = news;
                policy.map_or(Groups::Unusable, Groups::Policy)
            }
        };
        let mut members = Vec::new();
        let domids: Vec<DomId> = s
            .directory("/local/domain")?
            .iter()
            .filter_map(|d| parse_u32(d.as_bytes()).and_then(|n| DomId::try_from(n).ok()))
            .filter(|&d| d != 0)
            .collect();
        report.domains = domids.len();
        for domid in domids {
            match Self::member(s, domid, &groups)? {
                Some(Ok(m)) => {
                    self.rejected.remove(&domid);
                    members.push(m);
                }
                Some(Err(why)) => {
                    if self.rejected.get(&domid) != Some(&why) {
                        self.rejected.insert(domid, why.clone());
                        report.rejected.push((domid, why));
                    }
                }
                None => {
                    self.rejected.remove(&domid);
                }
            }
        }
        let (lists, left_out) = peer_lists(&members);
        for (domid, n) in left_out {
            report.rejected.push((domid, format!("{n} peers left out of its list (at most {})", discovery::MAX_PEERS)));
        }
        report.members = members.iter().map(|m| (m.domid, m.group.to_string())).collect();
        for (&domid, list) in &lists {
            let value = list.to_value();
            if self.published.get(&domid) != Some(&value) {
                s.publish(&peers_path(domid), value.as_bytes(), domid)?;
                self.published.insert(domid, value.clone());
                report.published.push((domid, value));
            }
        }
        // Lists of guests that are no longer members, including ones left
        // by an earlier run of the daemon.
        let mut stale: Vec<DomId> = self.published.keys().filter(|d| !lists.contains_key(d)).copied().collect();
        for d in s.directory(PEERS_DIR)? {
            if let Some(d) = parse_u32(d.as_bytes()).and_then(|n| DomId::try_from(n).ok()) {
                if !lists.contains_key(&d) && !stale.contains(&d) {
                    stale.push(d);
                }
            }
        }
        for domid in stale {
            s.remove(&peers_path(domid))?;
            self.published.remove(&domid);
            report.removed.push(domid);
        }
        Ok(report)
    }
}

/// Whether a watch event on `path` can change a list: a domain directory
/// appearing or going, an advert, a vif's MAC, or a special watch. Our own
/// writes under the peers directory are not.
pub fn relevant(path: &str) -> bool {
    if path.starts_with('@') {
        return true;
    }
    let Some(rest) = path.strip_prefix("/local/domain/") else { return false };
    if rest.starts_with("0/cohort/") {
        return false;
    }
    !rest.contains('/') || rest.ends_with(discovery::ADVERT_KEY) || (rest.starts_with("0/backend/vif/") && rest.ends_with("/mac"))
}

#[cfg(test)]
mod tests {
    use super::relevant;

    #[test]
    fn relevance() {
        for yes in [
            "@releaseDomain",
            "/local/domain/7",
            "/local/domain/7/data/cohort/advert",
            "/local/domain/0/backend/vif/7/0/mac",
        ] {
            assert!(relevant(yes), "{yes}");
        }
        for no in [
            "/local/domain/0/cohort/peers/7",
            "/local/domain/7/device/vif/0/state",
            "/local/domain/7/data/cohort/chan/3",
            "/vm/abc",
        ] {
            assert!(!relevant(no), "{no}");
        }
    }
}
