//! The daemon against the simulated xenstored: who gets listed, who may
//! read and write the lists, guests leaving, bad adverts, lost connections.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use discovery::{peers_path, Advert, Group, PeerList, ADVERT_KEY};
use discoveryd::run::{run, Connector, Event, Options};
use discoveryd::scan::Publisher;
use discoveryd::store::{list_perms, Result, Store, StoreError};
use xen_proto::iface::DomId;
use xen_proto::xenstore::Client;
use xensim::{Sim, SimXsRing, Xen};
use xenstore_wire::{Access, Permission, WatchEvent, XsError};

/// dom0's xenstore client as the daemon's store.
struct SimStore {
    c: Client<SimXsRing>,
    /// Once set, every request fails (a xenstored that went away).
    dead: Rc<Cell<bool>>,
}

impl SimStore {
    fn new(xen: &Xen) -> SimStore {
        SimStore { c: xen.domain(0).xenstore_client(), dead: Rc::new(Cell::new(false)) }
    }

    fn tick(&mut self) -> Result<()> {
        if self.dead.get() {
            return Err(StoreError::Disconnected("test: xenstored went away".into()));
        }
        Ok(())
    }
}

fn xs(e: xen_proto::Error) -> StoreError {
    match e {
        xen_proto::Error::Xs(x) => StoreError::Xs(x),
        other => StoreError::Protocol(format!("{other:?}")),
    }
}

impl Store for SimStore {
    fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>> {
        self.tick()?;
        match self.c.read(path) {
            Ok(v) => Ok(Some(v)),
            Err(xen_proto::Error::Xs(XsError::Enoent)) => Ok(None),
            Err(e) => Err(xs(e)),
        }
    }
    fn directory(&mut self, path: &str) -> Result<Vec<String>> {
        self.tick()?;
        match self.c.directory(path) {
            Ok(v) => Ok(v),
            Err(xen_proto::Error::Xs(XsError::Enoent)) => Ok(Vec::new()),
            Err(e) => Err(xs(e)),
        }
    }
    fn publish(&mut self, path: &str, value: &[u8], reader: DomId) -> Result<()> {
        self.tick()?;
        self.c
            .transaction(|tx| {
                tx.write(path, value)?;
                tx.set_perms(path, &list_perms(reader))
            })
            .map_err(xs)
    }
    fn remove(&mut self, path: &str) -> Result<()> {
        self.tick()?;
        match self.c.rm(path) {
            Ok(()) | Err(xen_proto::Error::Xs(XsError::Enoent)) => Ok(()),
            Err(e) => Err(xs(e)),
        }
    }
    fn watch(&mut self, path: &str, token: &str) -> Result<()> {
        self.tick()?;
        self.c.watch(path, token).map_err(xs)
    }
    fn owner(&mut self, path: &str) -> Result<Option<DomId>> {
        self.tick()?;
        match self.c.get_perms(path) {
            Ok(p) => Ok(p.first().map(|p| p.domid)),
            Err(xen_proto::Error::Xs(XsError::Enoent)) => Ok(None),
            Err(e) => Err(xs(e)),
        }
    }
    fn next_event(&mut self, _timeout: Duration) -> Result<Option<WatchEvent>> {
        self.tick()?;
        self.c.next_watch_event().map_err(xs)
    }
}

fn mac(domid: DomId) -> [u8; 6] {
    [0x00, 0x16, 0x3e, 0xc0, 0x00, domid as u8]
}

/// A guest as the toolstack makes it (a vif whose MAC dom0's backend
/// holds), advertising itself in `group` (None: not at all).
fn guest(sim: &Sim, domid: DomId, group: Option<&str>) -> Client<SimXsRing> {
    let dom = sim.create_domain(domid);
    sim.xs_write(
        &format!("/local/domain/0/backend/vif/{domid}/0/mac"),
        format!("{}", xen_proto::values::Mac(mac(domid))).as_bytes(),
    );
    let mut c = dom.xenstore_client();
    if let Some(g) = group {
        let advert = Advert { version: 1, group: Group::new(g).unwrap(), mac: mac(domid), ipv4: Some([198, 18, 0, domid as u8]) };
        c.write(ADVERT_KEY, advert.to_value().as_bytes()).unwrap();
    }
    c
}

fn list_of(sim: &Sim, domid: DomId) -> Option<Vec<DomId>> {
    let v = sim.xs_read(&peers_path(domid))?;
    Some(PeerList::parse(&v).expect("a well-formed list").peers().iter().map(|p| p.domid).collect())
}

#[test]
fn groups_are_published_privately() {
    let sim = Sim::new();
    sim.create_domain(0);
    let mut g1 = guest(&sim, 1, Some("lab"));
    let _g2 = guest(&sim, 2, Some("lab"));
    let _g3 = guest(&sim, 3, Some("other"));
    let _g4 = guest(&sim, 4, None);
    let mut store = SimStore::new(&sim);
    let mut p = Publisher::default();
    let report = p.scan(&mut store).unwrap();
    assert_eq!(list_of(&sim, 1), Some(vec![2]));
    assert_eq!(list_of(&sim, 2), Some(vec![1]));
    assert_eq!(list_of(&sim, 3), Some(vec![]), "alone in its group");
    assert_eq!(list_of(&sim, 4), None, "not advertising: no list");
    assert_eq!(report.published.len(), 3);
    assert_eq!(report.domains, 4, "every domain but dom0 looked at");
    // The list carries the MAC dom0's backend holds.
    let l = PeerList::parse(&sim.xs_read(&peers_path(1)).unwrap()).unwrap();
    assert_eq!(l.get(2).map(|p| p.mac), Some(mac(2)));
    // dom1 reads its own list, not dom2's, and writes neither.
    assert!(g1.read(&peers_path(1)).is_ok());
    assert_eq!(g1.read(&peers_path(2)), Err(xen_proto::Error::Xs(XsError::Eacces)));
    assert_eq!(g1.write(&peers_path(1), b"v1 3=00:16:3e:c0:00:03"), Err(xen_proto::Error::Xs(XsError::Eacces)));
    // Nothing changed: nothing rewritten.
    assert!(!p.scan(&mut store).unwrap().changed());
}

#[test]
fn adverts_dom0_cannot_vouch_for_are_rejected_once() {
    let sim = Sim::new();
    sim.create_domain(0);
    let _g1 = guest(&sim, 1, Some("lab"));
    let mut g2 = guest(&sim, 2, None);
    // dom2 claims dom1's MAC; dom5 writes garbage.
    let forged = Advert { version: 1, group: Group::new("lab").unwrap(), mac: mac(1), ipv4: None };
    g2.write(ADVERT_KEY, forged.to_value().as_bytes()).unwrap();
    let mut g5 = guest(&sim, 5, None);
    g5.write(ADVERT_KEY, b"version=1 group=lab mac=garbage").unwrap();
    let mut store = SimStore::new(&sim);
    let mut p = Publisher::default();
    let report = p.scan(&mut store).unwrap();
    let rejected: Vec<DomId> = report.rejected.iter().map(|(d, _)| *d).collect();
    assert_eq!(rejected, [2, 5], "{report:?}");
    assert!(report.rejected[0].1.contains("not one of its vifs"));
    assert_eq!(list_of(&sim, 1), Some(vec![]), "dom1 must not be told about a forger");
    assert_eq!(list_of(&sim, 2), None);
    // Reported once, not on every scan.
    assert!(p.scan(&mut store).unwrap().rejected.is_empty());
}

#[test]
fn leaving_guests_disappear_from_every_list() {
    let sim = Sim::new();
    sim.create_domain(0);
    let _g1 = guest(&sim, 1, Some("lab"));
    let mut g2 = guest(&sim, 2, Some("lab"));
    let _g3 = guest(&sim, 3, Some("lab"));
    let mut store = SimStore::new(&sim);
    let mut p = Publisher::default();
    p.scan(&mut store).unwrap();
    assert_eq!(list_of(&sim, 1), Some(vec![2, 3]));
    // dom2 withdraws its advert; dom3 is destroyed.
    g2.rm(ADVERT_KEY).unwrap();
    drop(g2);
    sim.destroy_domain(3);
    let report = p.scan(&mut store).unwrap();
    assert_eq!(list_of(&sim, 1), Some(vec![]));
    assert_eq!(list_of(&sim, 2), None);
    assert_eq!(list_of(&sim, 3), None);
    let mut removed = report.removed.clone();
    removed.sort();
    assert_eq!(removed, [2, 3]);
}

#[test]
fn the_loop_follows_watch_events_and_survives_a_lost_connection() {
    let sim = Sim::new();
    sim.create_domain(0);
    let _g1 = guest(&sim, 1, Some("lab"));
    struct Flaky {
        xen: Xen,
        connects: usize,
        first_dies: Rc<Cell<bool>>,
    }
    impl Connector for Flaky {
        type Store = SimStore;
        fn connect(&mut self) -> Result<SimStore> {
            self.connects += 1;
            match self.connects {
                1 => Err(StoreError::Disconnected("test: not up yet".into())),
                2 => Ok(SimStore { dead: self.first_dies.clone(), ..SimStore::new(&self.xen) }),
                _ => Ok(SimStore::new(&self.xen)),
            }
        }
    }
    let first_dies = Rc::new(Cell::new(false));
    let mut flaky = Flaky { xen: (*sim).clone(), connects: 0, first_dies: first_dies.clone() };
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let mut on_event = move |e: Event<'_>| {
        l.borrow_mut().push(match e {
            Event::Connected => "connected",
            Event::ConnectFailed(..) => "connect failed",
            Event::Lost(_) => "lost",
            Event::Scanned { .. } => "scan",
        });
    };
    // The first good connection dies; then a second guest appears, and the
    // new connection's watch must bring it into dom1's list.
    let xen = (*sim).clone();
    let l = log.clone();
    let mut polls = 0;
    let started = std::time::Instant::now();
    let mut guests = Vec::new();
    let mut stop = move || {
        polls += 1;
        if polls == 3 {
            first_dies.set(true);
        }
        let reconnected = l.borrow().iter().filter(|e| **e == "connected").count() >= 2;
        if reconnected && guests.is_empty() {
            guests.push(guest_on(&xen, 2));
        }
        // The loop spins here (the simulated store never blocks): bound it
        // by time, for scans held back by the minimum interval.
        started.elapsed() > Duration::from_secs(5)
            || xen.xs_read(&peers_path(1)).is_some_and(|v| v.ends_with(b"2=00:16:3e:c0:00:02"))
    };
    let opts = Options { rescan: Duration::from_secs(3600), min_interval: Duration::from_millis(20), once: false };
    run(&mut flaky, opts, None, &mut on_event, &mut stop);
    let log = log.borrow();
    assert_eq!(log[..3], ["connect failed", "connected", "scan"], "{log:?}");
    assert!(log.contains(&"lost"), "{log:?}");
    assert_eq!(list_of(&sim, 1), Some(vec![2]), "{log:?}");
    // After the reconnection: a scan at once, and one for dom2's advert.
    let after = log.iter().rposition(|e| *e == "connected").unwrap();
    assert!(log[after..].iter().filter(|e| **e == "scan").count() >= 2, "{log:?}");
    // The daemon's socket closing takes its watches along; here they live
    // on dom0's ring, so take them down by hand for the leak check.
    let mut c = sim.domain(0).xenstore_client();
    for path in ["/local/domain", "@introduceDomain", "@releaseDomain"] {
        c.unwatch(path, discoveryd::run::WATCH_TOKEN).unwrap();
    }
}

/// `guest` for a `Xen` handle (inside a closure).
fn guest_on(xen: &Xen, domid: DomId) -> Client<SimXsRing> {
    let dom = xen.create_domain(domid);
    xen.xs_write(
        &format!("/local/domain/0/backend/vif/{domid}/0/mac"),
        format!("{}", xen_proto::values::Mac(mac(domid))).as_bytes(),
    );
    let mut c = dom.xenstore_client();
    let advert = Advert { version: 1, group: Group::new("lab").unwrap(), mac: mac(domid), ipv4: None };
    c.write(ADVERT_KEY, advert.to_value().as_bytes()).unwrap();
    c
}

/// A guest rewriting its advert in a loop: scans come at most every
/// minimum interval, and its last advert is published all the same.
#[test]
fn a_guest_rewriting_its_advert_in_a_loop_gets_few_scans_and_its_last_one() {
    let sim = Sim::new();
    sim.create_domain(0);
    let _g1 = guest(&sim, 1, Some("lab"));
    let mut g2 = guest(&sim, 2, Some("lab"));
    struct Once(Xen);
    impl Connector for Once {
        type Store = SimStore;
        fn connect(&mut self) -> Result<SimStore> {
            Ok(SimStore::new(&self.0))
        }
    }
    let scans = Rc::new(Cell::new(0u32));
    let s2 = scans.clone();
    let mut on_event = move |e: Event<'_>| {
        if let Event::Scanned { .. } = e {
            s2.set(s2.get() + 1);
        }
    };
    let min_interval = Duration::from_millis(50);
    let run_for = Duration::from_millis(500);
    let started = std::time::Instant::now();
    let xen = (*sim).clone();
    let mut rewrites = 0u32;
    let mut stop = move || {
        let elapsed = started.elapsed();
        if elapsed < run_for {
            // A new advert on every round: half the time in another group.
            let group = if rewrites.is_multiple_of(2) { "other" } else { "lab" };
            let advert = Advert { version: 1, group: Group::new(group).unwrap(), mac: mac(2), ipv4: None };
            g2.write(ADVERT_KEY, advert.to_value().as_bytes()).unwrap();
            rewrites += 1;
            return false;
        }
        if rewrites.is_multiple_of(2) {
            // The last one said "lab": end on "other", then wait for the
            // scan that covers it.
            let advert = Advert { version: 1, group: Group::new("other").unwrap(), mac: mac(2), ipv4: None };
            g2.write(ADVERT_KEY, advert.to_value().as_bytes()).unwrap();
            rewrites += 1;
        }
        elapsed > run_for + Duration::from_secs(5) || xen.xs_read(&peers_path(1)).is_some_and(|v| v.as_slice() == b"v1")
    };
    let opts = Options { rescan: Duration::from_secs(3600), min_interval, once: false };
    run(&mut Once((*sim).clone()), opts, None, &mut on_event, &mut stop);
    let took = started.elapsed();
    // One per interval on average, plus the first burst.
    let most = (took.as_millis() / min_interval.as_millis()) as u32 + discoveryd::run::SCAN_BURST as u32 + 1;
    assert!(scans.get() <= most, "{} scans in {took:?}", scans.get());
    assert_eq!(list_of(&sim, 1), Some(vec![]), "the last advert (another group) was scanned");
    assert_eq!(list_of(&sim, 2), Some(vec![]));
    let mut c = sim.domain(0).xenstore_client();
    for path in ["/local/domain", "@introduceDomain", "@releaseDomain"] {
        c.unwatch(path, discoveryd::run::WATCH_TOKEN).unwrap();
    }
}

// dom0's group policy.

const U3: &str = "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6";

/// What the toolstack writes for a domain: its name and `vm` path, owned
/// by dom0 and readable by the guest (as libxl does).
fn toolstack(sim: &Sim, domid: DomId, name: &str, uuid: &str) {
    let mut c = sim.domain(0).xenstore_client();
    let perms = [Permission::new(0, Access::None), Permission::new(domid, Access::Read)];
    for (key, value) in [("name", name.to_string()), ("vm", format!("/vm/{uuid}"))] {
        let path = format!("/local/domain/{domid}/{key}");
        c.write(&path, value.as_bytes()).unwrap();
        c.set_perms(&path, &perms).unwrap();
    }
}

/// A policy file of this test's own.
struct PolicyFile(std::path::PathBuf);

impl PolicyFile {
    fn new(test: &str, text: &str) -> PolicyFile {
        let path = std::env::temp_dir().join(format!("cohort-policy-{}-{test}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        PolicyFile(path)
    }
    fn set(&self, text: &[u8]) {
        std::fs::write(&self.0, text).unwrap();
    }
}

impl Drop for PolicyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn rejected(report: &discoveryd::scan::Report) -> Vec<DomId> {
    report.rejected.iter().map(|(d, _)| *d).collect()
}

#[test]
fn with_a_policy_groups_are_dom0s_not_the_adverts() {
    let sim = Sim::new();
    sim.create_domain(0);
    let policy = PolicyFile::new("dom0s", &format!("# dom0's groups\nname a lab\nname b lab\nuuid {U3} lab\nname d other\n"));
    // dom1 and dom2 are given "lab" by name, dom3 by UUID (its name is not
    // listed); dom4 is not listed at all; dom5 is given "other". All five
    // advertise "lab".
    let mut guests = Vec::new();
    for (domid, name, uuid) in [
        (1, "a", "00000000-0000-4000-8000-000000000001"),
        (2, "b", "00000000-0000-4000-8000-000000000002"),
        (3, "c", U3),
        (4, "rogue", "00000000-0000-4000-8000-000000000004"),
        (5, "d", "00000000-0000-4000-8000-000000000005"),
    ] {
        guests.push(guest(&sim, domid, Some("lab")));
        toolstack(&sim, domid, name, uuid);
    }
    let mut store = SimStore::new(&sim);
    let mut p = Publisher::with_policy(policy.0.clone());
    let report = p.scan(&mut store).unwrap();
    assert_eq!(list_of(&sim, 1), Some(vec![2, 3]));
    assert_eq!(list_of(&sim, 2), Some(vec![1, 3]));
    assert_eq!(list_of(&sim, 3), Some(vec![1, 2]));
    assert_eq!(list_of(&sim, 4), None, "claims lab, not in the policy: no list");
    assert_eq!(list_of(&sim, 5), None, "claims lab, given other: no list");
    assert_eq!(rejected(&report), [4, 5], "{report:?}");
    assert!(
        report.rejected[0].1.starts_with("not in the policy (name rogue, uuid 00000000-0000-4000-8000-000000000004"),
        "{report:?}"
    );
    assert_eq!(report.rejected[1].1, "advertises group lab, but the policy gives it other: no peers");
    assert!(report.policy.as_deref().is_some_and(|l| l.ends_with(": 4 entries; groups are dom0's")), "{report:?}");
    // Said once: nothing new on the next scan.
    let again = p.scan(&mut store).unwrap();
    assert!(!again.changed(), "{again:?}");
    // dom5 advertises the group it is given: it is listed with nobody
    // (alone in "other"), and nobody else's list changes.
    let advert = Advert { version: 1, group: Group::new("other").unwrap(), mac: mac(5), ipv4: None };
    guests[4].write(ADVERT_KEY, advert.to_value().as_bytes()).unwrap();
    p.scan(&mut store).unwrap();
    assert_eq!(list_of(&sim, 5), Some(vec![]));
    assert_eq!(list_of(&sim, 1), Some(vec![2, 3]));
}

#[test]
fn a_guest_cannot_name_itself_into_a_group() {
    let sim = Sim::new();
    sim.create_domain(0);
    let policy = PolicyFile::new("rename", &format!("name a lab\nname b lab\nuuid {U3} lab\n"));
    let _g1 = guest(&sim, 1, Some("lab"));
    toolstack(&sim, 1, "a", "00000000-0000-4000-8000-000000000001");
    // dom4 has a name from the toolstack, and tries to change it.
    let mut g4 = guest(&sim, 4, Some("lab"));
    toolstack(&sim, 4, "rogue", "00000000-0000-4000-8000-000000000004");
    for (key, value) in [("name", "b".to_string()), ("vm", format!("/vm/{U3}"))] {
        let path = format!("/local/domain/4/{key}");
        assert_eq!(g4.write(&path, value.as_bytes()), Err(xen_proto::Error::Xs(XsError::Eacces)), "{key}");
        assert_eq!(g4.set_perms(&path, &[Permission::new(4, Access::None)]), Err(xen_proto::Error::Xs(XsError::Eacces)), "{key}");
    }
    // dom6 has none (a toolstack that wrote no name: here its home is its
    // own), so it writes them itself, and more, in every spelling it can.
    let mut g6 = guest(&sim, 6, Some("lab"));
    g6.write("/local/domain/6/name", b"b").unwrap();
    g6.write("/local/domain/6/vm", format!("/vm/{U3}").as_bytes()).unwrap();
    g6.write("data/name", b"b").unwrap();
    g6.write("data/cohort/name", b"b").unwrap();
    let mut store = SimStore::new(&sim);
    let mut p = Publisher::with_policy(policy.0.clone());
    let report = p.scan(&mut store).unwrap();
    assert_eq!(list_of(&sim, 1), Some(vec![]), "dom1 is told about neither");
    assert_eq!(list_of(&sim, 4), None);
    assert_eq!(list_of(&sim, 6), None);
    assert_eq!(rejected(&report), [4, 6], "{report:?}");
    assert!(report.rejected[0].1.contains("name rogue,"), "{report:?}");
    assert!(report.rejected[1].1.contains("(name not dom0's, uuid not dom0's;"), "{report:?}");
    // Once the toolstack's nodes are there and dom0's, they count.
    let mut c = sim.domain(0).xenstore_client();
    c.rm("/local/domain/6/name").unwrap();
    c.rm("/local/domain/6/vm").unwrap();
    toolstack(&sim, 6, "b", "00000000-0000-4000-8000-000000000006");
    p.scan(&mut store).unwrap();
    assert_eq!(list_of(&sim, 1), Some(vec![6]));
    assert_eq!(list_of(&sim, 6), Some(vec![1]));
}

#[test]
fn the_policy_is_read_at_every_scan_and_a_broken_one_fails_closed() {
    let sim = Sim::new();
    sim.create_domain(0);
    let policy = PolicyFile::new("reload", "name a lab\nname b lab\n");
    let _g1 = guest(&sim, 1, Some("lab"));
    toolstack(&sim, 1, "a", "00000000-0000-4000-8000-000000000001");
    let _g2 = guest(&sim, 2, Some("lab"));
    toolstack(&sim, 2, "b", "00000000-0000-4000-8000-000000000002");
    let mut store = SimStore::new(&sim);
    let mut p = Publisher::with_policy(policy.0.clone());
    p.scan(&mut store).unwrap();
    assert_eq!(list_of(&sim, 1), Some(vec![2]));
    // dom0 takes b out: the next scan drops it.
    policy.set(b"name a lab\n");
    let report = p.scan(&mut store).unwrap();
    assert_eq!((list_of(&sim, 1), list_of(&sim, 2)), (Some(vec![]), None));
    assert_eq!(rejected(&report), [2]);
    assert!(report.policy.as_deref().is_some_and(|l| l.ends_with(": 1 entries; groups are dom0's")), "{report:?}");
    // A broken policy, a missing one, one too long: nobody gets a list,
    // each said once with why (the line for a bad one).
    let too_long = vec![b'#'; discovery::MAX_POLICY_LEN + 1];
    let cases: [(Option<&[u8]>, &str); 3] = [
        (Some(b"name a lab\nname b\n"), "line 2: not `name NAME GROUP` or `uuid UUID GROUP`"),
        (None, "No such file"),
        (Some(&too_long), "longer than 65536 bytes"),
    ];
    for (text, why) in cases {
        match text {
            Some(t) => policy.set(t),
            None => std::fs::remove_file(&policy.0).unwrap(),
        }
        let report = p.scan(&mut store).unwrap();
        let said = report.policy.clone().unwrap_or_default();
        assert!(said.contains(why) && said.ends_with("; no guest gets peers until it is fixed"), "{said}");
        assert_eq!((list_of(&sim, 1), list_of(&sim, 2)), (None, None), "{why}");
        assert!(p.scan(&mut store).unwrap().policy.is_none(), "said once");
    }
    // Fixed: back as before.
    policy.set(b"name a lab\nname b lab\n");
    p.scan(&mut store).unwrap();
    assert_eq!((list_of(&sim, 1), list_of(&sim, 2)), (Some(vec![2]), Some(vec![1])));
}
