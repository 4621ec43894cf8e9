//! A frontend/backend pair walking the xenbus handshake over the sim.

use std::cell::RefCell;
use std::rc::Rc;

use xen_proto::iface::{EventChannels, GrantTable, SharedPage};
use xen_proto::xenbus::{read_state, switch_state, wait_for_state, FrontendStateMachine, XenbusState as S};
use xen_proto::Error;
use xensim::Sim;
use xenstore_wire::{Access, Permission};

const FE: &str = "/local/domain/1/device/vif/0";
const BE: &str = "/local/domain/0/backend/vif/1/0";
const MS: u64 = 1_000_000;

/// What the toolstack does before the guest starts.
fn toolstack(sim: &Sim) {
    let mut c = sim.create_domain(0).xenstore_client();
    c.mkdir(FE).unwrap();
    c.set_perms(FE, &[Permission::new(1, Access::None), Permission::new(0, Access::Read)]).unwrap();
    c.write(&format!("{FE}/backend"), BE.as_bytes()).unwrap();
    c.write(&format!("{FE}/state"), b"1").unwrap();
    c.mkdir(BE).unwrap();
    c.set_perms(BE, &[Permission::new(0, Access::None), Permission::new(1, Access::Read)]).unwrap();
    c.write(&format!("{BE}/state"), b"1").unwrap();
}

#[test]
fn handshake_connect_and_close() {
    let sim = Sim::new();
    toolstack(&sim);
    let fe_dom = sim.create_domain(1);
    let mut fe = fe_dom.xenstore_client();
    let dom0 = sim.domain(0);
    let mut bec = dom0.xenstore_client();
    let fe_state = format!("{FE}/state");
    let be_state = format!("{BE}/state");

    let mut fsm = FrontendStateMachine::new();
    assert_eq!(read_state(&mut fe, &fe_state).unwrap(), S::Initialising);
    // The frontend reads the backend path the toolstack gave it.
    assert_eq!(fe.read_string(&format!("{FE}/backend")).unwrap(), BE);

    // Backend announces it is waiting for the frontend.
    switch_state(&mut bec, &be_state, S::InitWait).unwrap();
    assert_eq!(wait_for_state(&mut fe, &be_state, &[S::InitWait], 10 * MS), Ok(S::InitWait));
    fsm.switch(&mut fe, &fe_state, S::InitWait).unwrap();

    // Frontend shares a ring page and an event channel, then Initialised.
    let mut fgnt = fe_dom.gnttab();
    let mut fevt = fe_dom.evtchn();
    let ring = fgnt.alloc_page().unwrap();
    let gref = fgnt.grant(&ring, 0, false).unwrap();
    let port = fevt.alloc_unbound(0).unwrap();
    fe.transaction(|tx| {
        tx.write(&format!("{FE}/ring-ref"), gref.to_string().as_bytes())?;
        tx.write(&format!("{FE}/event-channel"), port.to_string().as_bytes())
    })
    .unwrap();
    // Skipping ahead is rejected and publishes nothing.
    assert_eq!(
        fsm.switch(&mut fe, &fe_state, S::Connected),
        Err(Error::IllegalTransition { from: S::InitWait, to: S::Connected })
    );
    assert_eq!(read_state(&mut fe, &fe_state).unwrap(), S::InitWait);
    fsm.switch(&mut fe, &fe_state, S::Initialised).unwrap();

    // Backend picks up the details, maps, binds, connects.
    assert_eq!(wait_for_state(&mut bec, &fe_state, &[S::Initialised], 10 * MS), Ok(S::Initialised));
    let bref: u32 = bec.read_string(&format!("{FE}/ring-ref")).unwrap().parse().unwrap();
    let bport: u32 = bec.read_string(&format!("{FE}/event-channel")).unwrap().parse().unwrap();
    let (mut bgnt, mut bevt) = (dom0.gnttab(), dom0.evtchn());
    let mapped = bgnt.map(1, bref, false).unwrap();
    let local = bevt.bind_interdomain(1, bport).unwrap();
    switch_state(&mut bec, &be_state, S::Connected).unwrap();

    assert_eq!(wait_for_state(&mut fe, &be_state, &[S::Connected], 10 * MS), Ok(S::Connected));
    fsm.switch(&mut fe, &fe_state, S::Connected).unwrap();
    assert_eq!(fsm.state(), S::Connected);

    // Data path: request, kick, response.
    ring.write_u32(0, 0x1234);
    fevt.notify(port).unwrap();
    assert!(bevt.take_pending(local));
    assert_eq!(mapped.read_u32(0), 0x1234);
    mapped.write_u32(4, 0x5678);
    bevt.notify(local).unwrap();
    assert!(fevt.take_pending(port));
    assert_eq!(ring.read_u32(4), 0x5678);

    // Illegal moves from Connected.
    assert!(fsm.switch(&mut fe, &fe_state, S::Initialised).is_err());
    assert!(fsm.switch(&mut fe, &fe_state, S::Closed).is_err());
    assert_eq!(read_state(&mut fe, &fe_state).unwrap(), S::Connected);

    // Teardown: frontend Closing, backend releases and Closes, frontend Closed.
    fsm.switch(&mut fe, &fe_state, S::Closing).unwrap();
    assert_eq!(wait_for_state(&mut bec, &fe_state, &[S::Closing], 10 * MS), Ok(S::Closing));
    bgnt.unmap(mapped).unwrap();
    bevt.close(local).unwrap();
    switch_state(&mut bec, &be_state, S::Closed).unwrap();
    assert_eq!(wait_for_state(&mut fe, &be_state, &[S::Closed], 10 * MS), Ok(S::Closed));
    fsm.switch(&mut fe, &fe_state, S::Closed).unwrap();
    fevt.close(port).unwrap();
    fgnt.revoke(gref).unwrap();
    fgnt.free_page(ring);

    assert!(fsm.switch(&mut fe, &fe_state, S::Connected).is_err());
    fsm.switch(&mut fe, &fe_state, S::Initialising).unwrap();
    assert_eq!(read_state(&mut fe, &fe_state).unwrap(), S::Initialising);
}

#[test]
fn backend_driven_by_step_hook() {
    // The backend reacts inside the sim while the frontend blocks.
    let sim = Sim::new();
    toolstack(&sim);
    let mut fe = sim.create_domain(1).xenstore_client();
    let be = Rc::new(RefCell::new(sim.domain(0).xenstore_client()));
    let fe_state = format!("{FE}/state");
    let be_state = format!("{BE}/state");
    let hook_be = be.clone();
    let (fs, bs) = (fe_state.clone(), be_state.clone());
    sim.set_step_hook(move || {
        let mut c = hook_be.borrow_mut();
        // Mirror the frontend one step behind, as a trivial backend.
        let next = match read_state(&mut c, &fs).unwrap() {
            S::Initialising => S::InitWait,
            S::Initialised => S::Connected,
            S::Closing => S::Closed,
            _ => return,
        };
        switch_state(&mut c, &bs, next).unwrap();
    });
    let mut fsm = FrontendStateMachine::new();
    assert_eq!(wait_for_state(&mut fe, &be_state, &[S::InitWait], 10 * MS), Ok(S::InitWait));
    fsm.switch(&mut fe, &fe_state, S::InitWait).unwrap();
    fsm.switch(&mut fe, &fe_state, S::Initialised).unwrap();
    assert_eq!(wait_for_state(&mut fe, &be_state, &[S::Connected], 10 * MS), Ok(S::Connected));
    fsm.switch(&mut fe, &fe_state, S::Connected).unwrap();
    fsm.switch(&mut fe, &fe_state, S::Closing).unwrap();
    assert_eq!(wait_for_state(&mut fe, &be_state, &[S::Closed], 10 * MS), Ok(S::Closed));
    fsm.switch(&mut fe, &fe_state, S::Closed).unwrap();
    sim.clear_step_hook();
}

#[test]
fn wait_for_state_times_out_and_cleans_up() {
    let sim = Sim::new();
    toolstack(&sim);
    let mut fe = sim.create_domain(1).xenstore_client();
    let be_state = format!("{BE}/state");
    let t0 = sim.now_ns();
    assert_eq!(wait_for_state(&mut fe, &be_state, &[S::Connected], 20 * MS), Err(Error::Timeout));
    assert!(sim.now_ns() - t0 >= 10 * MS);
    // A missing node reads as Unknown; garbage is an error.
    assert_eq!(read_state(&mut fe, &format!("{FE}/nothing")), Ok(S::Unknown));
    sim.xs_write(&be_state, b"garbage");
    assert_eq!(read_state(&mut fe, &be_state), Err(Error::InvalidState));
    assert_eq!(wait_for_state(&mut fe, &be_state, &[S::Connected], 20 * MS), Err(Error::InvalidState));
    // The watch was removed on every path: Sim's drop checks.
}

#[test]
fn switch_state_retries_conflicts() {
    let sim = Sim::new();
    toolstack(&sim);
    let mut fe = sim.create_domain(1).xenstore_client();
    let fe_state = format!("{FE}/state");
    sim.force_eagain(2);
    switch_state(&mut fe, &fe_state, S::InitWait).unwrap();
    assert_eq!(sim.forced_eagain_left(), 0);
    assert_eq!(sim.xs_read(&fe_state).unwrap(), b"2");
    // Rewriting the same state is a no-op that still succeeds.
    switch_state(&mut fe, &fe_state, S::InitWait).unwrap();
    // Bounded: endless conflicts surface as an error.
    sim.force_eagain(1000);
    assert!(matches!(switch_state(&mut fe, &fe_state, S::Initialised), Err(Error::TransactionRetries(_))));
    sim.force_eagain(0);
    assert_eq!(read_state(&mut fe, &fe_state).unwrap(), S::InitWait);
}
