//! `discoveryd_store`: the discovery daemon's scan against a xenstore
//! that hostile guests write to.
//!
//! The simulated xenstored (xensim) holds dom0 and up to six guests. The
//! fuzzer plays the toolstack (creates and destroys guests, writes the
//! vif MACs in dom0's backend directory, leaves stale lists behind when
//! the daemon restarts) and the guests (each through its own xenstore
//! connection, with its own permissions: adverts valid or not, naming its
//! own MAC or another's, writes into places it has no business in, other
//! guests let in on its advert, its home removed). Between those,
//! [`discoveryd::scan::Publisher::scan`] runs on dom0's connection. After
//! each scan:
//!
//! - nothing panicked, and the scan succeeded (dom0 may read everything);
//! - the lists published are exactly those of the guests whose advert
//!   parses and names a MAC the toolstack gave that guest (the harness's
//!   own record of the toolstack's writes, not what the store says), each
//!   listing the other members of its group: so a MAC dom0 did not vouch
//!   for is never published;
//! - every list published parses, and no list is left for a non-member;
//! - a list can be read by its guest and not by another guest.
//!
//! At the end nothing leaks (watches, transactions).

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::Arbitrary;
use discovery::{advert_path, peer_lists, peers_path, Advert, Group, Member, PeerList, PEERS_DIR};
use discoveryd::scan::Publisher;
use discoveryd::store::{list_perms, Result as StoreResult, Store, StoreError};
use xen_proto::iface::DomId;
use xen_proto::values::{parse_mac, Mac};
use xen_proto::xenstore::Client;
use xensim::{SimXsRing, Xen};
use xenstore_wire::{Access, Permission, WatchEvent, XsError};

const MAX_OPS: usize = 40;
const GUESTS: DomId = 6;

#[derive(Arbitrary, Debug)]
pub struct Input {
    pub ops: Vec<Op>,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum MacChoice {
    /// The MAC the toolstack would give guest `d`'s vif `devid`.
    Of {
        d: u8,
        devid: u8,
    },
    Raw([u8; 6]),
    Bytes(Vec<u8>),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum AdvertChoice {
    Valid { group: u8, mac: MacChoice, ipv4: Option<[u8; 4]>, version: u8 },
    Bytes(Vec<u8>),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Target {
    /// Another guest's advert.
    OtherAdvert(u8),
    /// Its own vif MAC in dom0's backend directory.
    BackendMac(u8),
    /// Another guest's vif MAC.
    OtherBackendMac(u8, u8),
    /// Its own peer list.
    PeerList,
    /// Another domain's home.
    Home(u8),
    /// A node of its own with a funny name.
    OwnNode(u8),
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    Create(u8),
    Destroy(u8),
    /// The toolstack writes guest `d`'s vif `devid` MAC.
    Vif {
        d: u8,
        devid: u8,
        mac: MacChoice,
    },
    /// The toolstack removes a vif.
    RmVif {
        d: u8,
        devid: u8,
    },
    Advert {
        d: u8,
        advert: AdvertChoice,
    },
    RmAdvert(u8),
    RmHome(u8),
    /// Guest `d` lets guest `other` write its advert.
    Share {
        d: u8,
        other: u8,
    },
    /// Guest `d` writes where it should not be able to.
    Write {
        d: u8,
        target: Target,
        value: Vec<u8>,
    },
    /// A list left by an earlier daemon; the daemon restarts.
    Stale {
        d: u16,
        value: Vec<u8>,
    },
    Restart,
    Scan,
}

/// dom0's connection as the daemon's store (as in discoveryd's tests).
struct SimStore {
    c: Client<SimXsRing>,
}

fn xs(e: xen_proto::Error) -> StoreError {
    match e {
        xen_proto::Error::Xs(x) => StoreError::Xs(x),
        other => StoreError::Protocol(format!("{other:?}")),
    }
}

impl Store for SimStore {
    fn read(&mut self, path: &str) -> StoreResult<Option<Vec<u8>>> {
        match self.c.read(path) {
            Ok(v) => Ok(Some(v)),
            Err(xen_proto::Error::Xs(XsError::Enoent)) => Ok(None),
            Err(e) => Err(xs(e)),
        }
    }
    fn directory(&mut self, path: &str) -> StoreResult<Vec<String>> {
        match self.c.directory(path) {
            Ok(v) => Ok(v),
            Err(xen_proto::Error::Xs(XsError::Enoent)) => Ok(Vec::new()),
            Err(e) => Err(xs(e)),
        }
    }
    fn owner(&mut self, path: &str) -> StoreResult<Option<DomId>> {
        match self.c.get_perms(path) {
            Ok(p) => Ok(p.first().map(|p| p.domid)),
            Err(xen_proto::Error::Xs(XsError::Enoent)) => Ok(None),
            Err(e) => Err(xs(e)),
        }
    }
    fn publish(&mut self, path: &str, value: &[u8], reader: DomId) -> StoreResult<()> {
        self.c
            .transaction(|tx| {
                tx.write(path, value)?;
                tx.set_perms(path, &list_perms(reader))
            })
            .map_err(xs)
    }
    fn remove(&mut self, path: &str) -> StoreResult<()> {
        match self.c.rm(path) {
            Ok(()) | Err(xen_proto::Error::Xs(XsError::Enoent)) => Ok(()),
            Err(e) => Err(xs(e)),
        }
    }
    fn watch(&mut self, path: &str, token: &str) -> StoreResult<()> {
        self.c.watch(path, token).map_err(xs)
    }
    fn next_event(&mut self, _timeout: std::time::Duration) -> StoreResult<Option<WatchEvent>> {
        self.c.next_watch_event().map_err(xs)
    }
}

fn guest_id(d: u8) -> DomId {
    DomId::from(d) % GUESTS + 1
}

fn toolstack_mac(d: DomId, devid: u8) -> [u8; 6] {
    [0x00, 0x16, 0x3e, 0xc0, devid % 3, d as u8]
}

fn mac_bytes(m: &MacChoice) -> Vec<u8> {
    match m {
        MacChoice::Of { d, devid } => format!("{}", Mac(toolstack_mac(guest_id(*d), *devid))).into_bytes(),
        MacChoice::Raw(m) => format!("{}", Mac(*m)).into_bytes(),
        MacChoice::Bytes(b) => b.iter().take(24).copied().collect(),
    }
}

fn vif_dir(d: DomId, devid: u8) -> String {
    format!("/local/domain/0/backend/vif/{d}/{}", devid % 3)
}

struct World {
    xen: Xen,
    store: SimStore,
    guests: BTreeMap<DomId, Client<SimXsRing>>,
    /// The toolstack's vif MACs: (guest, devid) -> value written.
    vifs: BTreeMap<(DomId, u8), Vec<u8>>,
    publisher: Publisher,
}

/// Runs one input.
pub fn check(data: &[u8]) {
    let Some(input) = crate::from_bytes::<Input>(data) else { return };
    let xen = Xen::new();
    let dom0 = xen.create_domain(0);
    let mut w = World {
        store: SimStore { c: dom0.xenstore_client() },
        xen,
        guests: BTreeMap::new(),
        vifs: BTreeMap::new(),
        publisher: Publisher::default(),
    };
    for op in input.ops.iter().take(MAX_OPS) {
        step(&mut w, op);
    }
    w.guests.clear();
    let leaks = w.xen.leaks();
    assert!(leaks.is_empty(), "leaks: {leaks:#?}");
}

fn step(w: &mut World, op: &Op) {
    match op {
        Op::Create(d) => {
            let d = guest_id(*d);
            if !w.guests.contains_key(&d) && !w.xen.domains().contains(&d) {
                let dom = w.xen.create_domain(d);
                w.guests.insert(d, dom.xenstore_client());
            }
        }
        Op::Destroy(d) => {
            let d = guest_id(*d);
            if w.guests.remove(&d).is_some() {
                w.xen.destroy_domain(d);
            }
        }
        Op::Vif { d, devid, mac } => {
            let d = guest_id(*d);
            let dir = vif_dir(d, *devid);
            let value = mac_bytes(mac);
            w.store.c.write(&format!("{dir}/mac"), &value).expect("dom0 writes the backend directory");
            // As the toolstack does: the guest may read its vif's backend.
            w.store
                .c
                .set_perms(&dir, &[Permission::new(0, Access::None), Permission::new(d, Access::Read)])
                .expect("dom0 sets permissions");
            w.vifs.insert((d, *devid % 3), value);
        }
        Op::RmVif { d, devid } => {
            let d = guest_id(*d);
            match w.store.c.rm(&vif_dir(d, *devid)) {
                Ok(()) | Err(xen_proto::Error::Xs(XsError::Enoent)) => {}
                Err(e) => panic!("dom0 rm: {e}"),
            }
            w.vifs.remove(&(d, *devid % 3));
        }
        Op::Advert { d, advert } => {
            let d = guest_id(*d);
            let Some(c) = w.guests.get_mut(&d) else { return };
            let value = match advert {
                AdvertChoice::Valid { group, mac, ipv4, version } => {
                    let m = parse_mac(&mac_bytes(mac)).unwrap_or([2, 0, 0, 0, 0, 1]);
                    let group = Group::new(["lab", "web", "db"][usize::from(*group) % 3]).expect("group");
                    Advert { version: u32::from(*version % 3), group, mac: m, ipv4: *ipv4 }.to_value().into_bytes()
                }
                AdvertChoice::Bytes(b) => b.iter().take(300).copied().collect(),
            };
            // A guest writes its home (may fail if it removed it).
            let _ = c.write(discovery::ADVERT_KEY, &value);
        }
        Op::RmAdvert(d) => {
            if let Some(c) = w.guests.get_mut(&guest_id(*d)) {
                let _ = c.rm(discovery::ADVERT_KEY);
            }
        }
        Op::RmHome(d) => {
            let d = guest_id(*d);
            if let Some(c) = w.guests.get_mut(&d) {
                let _ = c.rm(&format!("/local/domain/{d}"));
            }
        }
        Op::Share { d, other } => {
            let (d, o) = (guest_id(*d), guest_id(*other));
            if let Some(c) = w.guests.get_mut(&d) {
                let _ =
                    c.set_perms(discovery::ADVERT_KEY, &[Permission::new(d, Access::None), Permission::new(o, Access::Write)]);
            }
        }
        Op::Write { d, target, value } => {
            let d = guest_id(*d);
            let path = match *target {
                Target::OtherAdvert(o) => advert_path(guest_id(o)),
                Target::BackendMac(devid) => format!("{}/mac", vif_dir(d, devid)),
                Target::OtherBackendMac(o, devid) => format!("{}/mac", vif_dir(guest_id(o), devid)),
                Target::PeerList => peers_path(d),
                Target::Home(o) => format!("/local/domain/{}", guest_id(o)),
                Target::OwnNode(n) => format!("/local/domain/{d}/{}", ["0", "data", "backend", "x y"][usize::from(n) % 4]),
            };
            if let Some(c) = w.guests.get_mut(&d) {
                let _ = c.write(&path, &value[..value.len().min(64)]);
            }
        }
        Op::Stale { d, value } => {
            let _ = w.store.c.write(&format!("{PEERS_DIR}/{d}"), &value[..value.len().min(64)]);
            w.publisher = Publisher::default();
        }
        Op::Restart => w.publisher = Publisher::default(),
        Op::Scan => scan(w),
    }
}

fn scan(w: &mut World) {
    let report = w.publisher.scan(&mut w.store).expect("dom0's scan fails only with xenstored");
    // Who should be a member: a guest whose home and advert are there and
    // whose advert names a MAC the toolstack gave it.
    let mut members = Vec::new();
    for d in w.xen.domains().into_iter().filter(|&d| d != 0) {
        if w.xen.xs_read(&format!("/local/domain/{d}")).is_none() {
            continue;
        }
        let Some(value) = w.xen.xs_read(&advert_path(d)) else { continue };
        let Ok(advert) = Advert::parse(&value) else { continue };
        let vouched: BTreeSet<[u8; 6]> = w.vifs.iter().filter(|((g, _), _)| *g == d).filter_map(|(_, v)| parse_mac(v)).collect();
        if vouched.contains(&advert.mac) {
            members.push(Member { domid: d, group: advert.group, mac: advert.mac });
        }
    }
    let (lists, _) = peer_lists(&members);
    let reported: BTreeSet<DomId> = report.members.iter().map(|(d, _)| *d).collect();
    let expected: BTreeSet<DomId> = lists.keys().copied().collect();
    assert_eq!(reported, expected, "members");
    // Exactly the expected lists are published.
    let names: BTreeSet<String> = w.store.directory(PEERS_DIR).expect("dom0 lists the peers directory").into_iter().collect();
    let want: BTreeSet<String> = lists.keys().map(|d| d.to_string()).collect();
    assert_eq!(names, want, "lists published");
    for (d, list) in &lists {
        let value = w.xen.xs_read(&peers_path(*d)).expect("a member's list");
        let parsed = PeerList::parse(&value).expect("a published list parses");
        assert_eq!(&parsed, list, "guest {d}'s list");
        for p in parsed.peers() {
            let vouched = w.vifs.iter().any(|((g, _), v)| *g == p.domid && parse_mac(v) == Some(p.mac));
            assert!(vouched, "published {}={} which dom0 never gave that guest", p.domid, Mac(p.mac));
        }
        // Readable by its guest, by no other.
        if let Some(c) = w.guests.get_mut(d) {
            assert_eq!(c.read(&peers_path(*d)).ok().as_deref(), Some(&value[..]), "guest {d} reads its list");
        }
        if let Some((o, c)) = w.guests.iter_mut().find(|(o, _)| *o != d) {
            assert!(c.read(&peers_path(*d)).is_err(), "guest {o} read guest {d}'s list");
        }
    }
}
