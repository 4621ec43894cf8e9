//! The xenstore client against the simulated xenstored.

use xen_proto::xenstore::{Client, Config};
use xen_proto::Error;
use xensim::Sim;
use xenstore_wire::{Access, Permission, WatchEvent, XsError};

fn ev(path: &str, token: &str) -> WatchEvent {
    WatchEvent { path: path.into(), token: token.into() }
}

#[test]
fn write_read_rm_round_trip() {
    let sim = Sim::new();
    let mut c = sim.create_domain(1).xenstore_client();
    c.write("/local/domain/1/data/x", b"hello").unwrap();
    assert_eq!(c.read("/local/domain/1/data/x").unwrap(), b"hello");
    assert_eq!(c.read_string("data/x").unwrap(), "hello", "relative to home");
    // Arbitrary bytes, including NUL, survive.
    c.write("data/bin", &[0, 1, 2, 0xff]).unwrap();
    assert_eq!(c.read("data/bin").unwrap(), [0, 1, 2, 0xff]);
    c.rm("data").unwrap();
    assert_eq!(c.read("data/x"), Err(Error::Xs(XsError::Enoent)));
    // Removing something already gone under an existing parent is fine.
    c.rm("data").unwrap();
    assert_eq!(c.rm("nope/deeper"), Err(Error::Xs(XsError::Enoent)));
    assert_eq!(sim.xs_read("/local/domain/1/data"), None);
}

#[test]
fn large_values_cross_the_ring_many_times() {
    let sim = Sim::new();
    let mut c = sim.create_domain(1).xenstore_client();
    let big: Vec<u8> = (0..4000u32).map(|i| (i * 7) as u8).collect();
    for i in 0..5 {
        let p = format!("big/{i}");
        c.write(&p, &big).unwrap();
        assert_eq!(c.read(&p).unwrap(), big);
    }
    // Over the payload limit: refused locally, nothing sent.
    let too_big = vec![b'x'; 4096];
    assert!(matches!(c.write("big/x", &too_big), Err(Error::Wire(_))));
    assert!(matches!(c.read("bad//path"), Err(Error::Wire(_))));
    c.rm("big").unwrap();
}

#[test]
fn mkdir_and_directory() {
    let sim = Sim::new();
    let mut c = sim.create_domain(2).xenstore_client();
    c.mkdir("device/vif/0").unwrap();
    c.mkdir("device/vif/1").unwrap();
    c.mkdir("device/vif/1").unwrap(); // existing: OK
    c.write("device/vbd", b"").unwrap();
    let mut d = c.directory("device").unwrap();
    d.sort();
    assert_eq!(d, ["vbd", "vif"]);
    assert_eq!(c.directory("device/vif").unwrap(), ["0", "1"]);
    assert!(c.directory("device/vif/0").unwrap().is_empty());
    assert_eq!(c.read("device/vif/0").unwrap(), b"");
    assert_eq!(c.directory("missing"), Err(Error::Xs(XsError::Enoent)));
    assert_eq!(c.get_domain_path(2).unwrap(), "/local/domain/2");
    assert_eq!(c.get_domain_path(7).unwrap(), "/local/domain/7");
    c.rm("device").unwrap();
}

#[test]
fn permissions_gate_other_domains() {
    let sim = Sim::new();
    let mut a = sim.create_domain(1).xenstore_client();
    let mut b = sim.create_domain(2).xenstore_client();
    let mut dom0 = sim.create_domain(0).xenstore_client();
    a.write("/local/domain/1/secret", b"s3").unwrap();
    let path = "/local/domain/1/secret";
    assert_eq!(b.read(path), Err(Error::Xs(XsError::Eacces)));
    assert_eq!(b.write(path, b"x"), Err(Error::Xs(XsError::Eacces)));
    assert_eq!(b.get_perms(path), Err(Error::Xs(XsError::Eacces)));
    // dom0 is privileged.
    assert_eq!(dom0.read(path).unwrap(), b"s3");
    // The creator owns the node.
    assert_eq!(a.get_perms(path).unwrap(), [Permission::new(1, Access::None)]);

    let perms = [Permission::new(1, Access::None), Permission::new(2, Access::Read)];
    a.set_perms(path, &perms).unwrap();
    assert_eq!(b.read(path).unwrap(), b"s3");
    assert_eq!(b.get_perms(path).unwrap(), perms);
    assert_eq!(b.write(path, b"x"), Err(Error::Xs(XsError::Eacces)));
    assert_eq!(b.set_perms(path, &[Permission::new(2, Access::Both)]), Err(Error::Xs(XsError::Eacces)));
    // An owner may not give a node away; dom0 may.
    assert_eq!(a.set_perms(path, &[Permission::new(2, Access::None)]), Err(Error::Xs(XsError::Eperm)));
    // Other domains' homes are closed to us.
    assert_eq!(b.write("/local/domain/1/mine", b"x"), Err(Error::Xs(XsError::Eacces)));
    // Errors leave clients usable.
    assert_eq!(b.read_string(path).unwrap(), "s3");
    a.rm("secret").unwrap();
}

#[test]
fn watch_fires_on_registration_change_and_not_after_unwatch() {
    let sim = Sim::new();
    let mut a = sim.create_domain(1).xenstore_client();
    let mut b = sim.create_domain(0).xenstore_client();
    a.mkdir("w").unwrap();
    a.watch("/local/domain/1/w", "tok").unwrap();
    assert_eq!(a.wait_watch_event(1_000_000).unwrap(), ev("/local/domain/1/w", "tok"));
    assert_eq!(a.next_watch_event().unwrap(), None);

    // A change below the watched node, by another domain.
    b.write("/local/domain/1/w/k", b"1").unwrap();
    assert_eq!(a.next_watch_event().unwrap(), Some(ev("/local/domain/1/w/k", "tok")));
    // Unrelated paths stay quiet; siblings with a common prefix too.
    b.write("/local/domain/1/wx", b"1").unwrap();
    assert_eq!(a.next_watch_event().unwrap(), None);

    // Relative watches report relative paths.
    a.watch("w/k", "rel").unwrap();
    assert_eq!(a.wait_watch_event(1).unwrap(), ev("w/k", "rel"));
    a.unwatch("w/k", "rel").unwrap();

    // Events pending at unwatch time are dropped too.
    b.write("/local/domain/1/w/k", b"2").unwrap();
    a.unwatch("/local/domain/1/w", "tok").unwrap();
    b.write("/local/domain/1/w/k", b"3").unwrap();
    assert_eq!(a.next_watch_event().unwrap(), None);
    let before = sim.now_ns();
    assert_eq!(a.wait_watch_event(50_000_000), Err(Error::Timeout));
    // Virtual time passed (a stale wake-up may take one slice of it).
    assert!(sim.now_ns() - before >= 40_000_000);

    assert_eq!(a.unwatch("/local/domain/1/w", "tok"), Err(Error::Xs(XsError::Enoent)));
    a.rm("w").unwrap();
    a.rm("wx").unwrap();
}

#[test]
fn watch_event_respects_read_permission_and_rm_fires() {
    let sim = Sim::new();
    let mut a = sim.create_domain(1).xenstore_client();
    let mut b = sim.create_domain(2).xenstore_client();
    b.watch("/local/domain/1", "spy").unwrap();
    assert_eq!(b.wait_watch_event(1).unwrap().token, "spy");
    a.write("hidden", b"x").unwrap();
    assert_eq!(b.next_watch_event().unwrap(), None, "dom2 may not read it");
    a.watch("hidden", "mine").unwrap();
    a.wait_watch_event(1).unwrap();
    a.rm("hidden").unwrap();
    assert_eq!(a.next_watch_event().unwrap(), Some(ev("hidden", "mine")));
    a.unwatch("hidden", "mine").unwrap();
    b.unwatch("/local/domain/1", "spy").unwrap();
}

#[test]
fn transaction_commits_and_isolates() {
    let sim = Sim::new();
    let mut a = sim.create_domain(1).xenstore_client();
    let v = a
        .transaction(|tx| {
            tx.write("t/a", b"1")?;
            tx.write("t/b", b"2")?;
            assert_eq!(sim.xs_read("/local/domain/1/t/a"), None, "not visible before commit");
            tx.read("t/a")
        })
        .unwrap();
    assert_eq!(v, b"1");
    assert_eq!(a.read("t/b").unwrap(), b"2");

    // Explicit start/end; abort discards.
    let tx = a.transaction_start().unwrap();
    a.in_transaction(tx).write("t/a", b"changed").unwrap();
    a.transaction_end(tx, false).unwrap();
    assert_eq!(a.read("t/a").unwrap(), b"1");
    // Ending it again: xenstored no longer knows it.
    assert_eq!(a.transaction_end(tx, true), Err(Error::Xs(XsError::Enoent)));

    // A conflicting write between start and commit means EAGAIN.
    let tx = a.transaction_start().unwrap();
    a.in_transaction(tx).write("t/a", b"mine").unwrap();
    sim.xs_write("/local/domain/1/t/other", b"x");
    assert_eq!(a.transaction_end(tx, true), Err(Error::Xs(XsError::Eagain)));
    assert_eq!(a.read("t/a").unwrap(), b"1");

    // A body error aborts and is returned unchanged.
    let r: Result<(), Error> = a.transaction(|tx| {
        tx.write("t/a", b"never")?;
        tx.read("t/missing").map(drop)
    });
    assert_eq!(r, Err(Error::Xs(XsError::Enoent)));
    assert_eq!(a.read("t/a").unwrap(), b"1");
    a.rm("t").unwrap();
}

#[test]
fn transaction_retries_forced_eagain_then_succeeds() {
    let sim = Sim::new();
    let mut a = sim.create_domain(1).xenstore_client();
    sim.force_eagain(3);
    let mut runs = 0;
    a.transaction(|tx| {
        runs += 1;
        tx.write("counter", format!("{runs}").as_bytes())
    })
    .unwrap();
    assert_eq!(runs, 4, "three conflicts, then a commit");
    assert_eq!(a.read("counter").unwrap(), b"4");
    assert_eq!(sim.forced_eagain_left(), 0);
    a.rm("counter").unwrap();
}

#[test]
fn transaction_gives_up_after_bound() {
    let sim = Sim::new();
    let ring = sim.create_domain(1).xenstore();
    let mut a = Client::with_config(ring, Config { tx_retries: 3, ..Config::default() });
    sim.force_eagain(100);
    let mut runs = 0;
    let r = a.transaction(|tx| {
        runs += 1;
        tx.write("x", b"1")
    });
    assert_eq!(r, Err(Error::TransactionRetries(3)));
    assert_eq!(runs, 3);
    assert_eq!(sim.forced_eagain_left(), 97);
    assert_eq!(a.read("x"), Err(Error::Xs(XsError::Enoent)));
}

#[test]
fn waiting_for_one_token_keeps_the_others() {
    let sim = Sim::new();
    let mut a = sim.create_domain(1).xenstore_client();
    a.watch("x", "first").unwrap();
    a.watch("y", "second").unwrap();
    assert_eq!(a.wait_watch_event_for("second", 1).unwrap(), ev("y", "second"));
    assert_eq!(a.next_watch_event().unwrap(), Some(ev("x", "first")));
    assert_eq!(a.wait_watch_event_for("second", 1_000), Err(Error::Timeout));
    a.unwatch("x", "first").unwrap();
    a.unwatch("y", "second").unwrap();
    assert_eq!(a.dropped_watch_events(), 0);
}

#[test]
fn watch_queue_is_bounded() {
    let sim = Sim::new();
    let ring = sim.create_domain(1).xenstore();
    let mut a = Client::with_config(ring, Config { max_queued_events: 2, ..Config::default() });
    a.watch("q", "t").unwrap();
    for i in 0..5 {
        sim.xs_write("/local/domain/1/q", format!("{i}").as_bytes());
    }
    // Draining happens on the next call; the oldest events are dropped.
    assert!(a.next_watch_event().unwrap().is_some());
    assert_eq!(a.dropped_watch_events(), 4);
    a.unwatch("q", "t").unwrap();
    a.rm("q").unwrap();
}
