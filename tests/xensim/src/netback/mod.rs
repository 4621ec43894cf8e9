//! A fake netback: the dom0 end of a vif, for testing netfront.
//!
//! [`Netback::new`] plays the toolstack (frontend and backend xenstore
//! directories with permissions, `mac`, `backend`, `backend-id`) and the
//! backend's probe (`feature-rx-copy`, `InitWait`). Each
//! [`step`](Netback::step) — explicit, or from xensim's step hook via
//! [`install_hook`](Netback::install_hook) — follows the frontend's
//! xenbus state the way Linux netback does (it maps the rings when the
//! frontend turns `Connected`; a frontend in `InitWait` is an error),
//! consumes tx requests into a queue the test reads, and delivers
//! frames the test injected into posted rx buffers.
//!
//! The ring code here is written from `netif.h`/`ring.h` independently
//! of the netfront crate, so a layout mistake on either side shows up.
//! Knobs ([`NetbackFault`], [`Netback::set_never_connect`],
//! [`Netback::hold_tx_mappings`]) make it misbehave.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use xen_proto::iface::{DomId, EventChannels, GrantTable, Port, SharedPage};
use xen_proto::xenbus::{read_state, switch_state, XenbusState};
use xen_proto::xenstore::Client;
use xenstore_wire::{Access, Permission};

mod faults;
mod rx;
mod tx;

pub use faults::NetbackFault;

use crate::evtchn::SimEvtchn;
use crate::gnttab::SimGnttab;
use crate::page::SimMapping;
use crate::xen::Xen;
use crate::xsring::SimXsRing;

// Shared ring header (ring.h) and entry sizes (netif.h).
const REQ_PROD: usize = 0;
const REQ_EVENT: usize = 4;
const RSP_PROD: usize = 8;
const RSP_EVENT: usize = 12;
const RING_HDR: usize = 64;
const RING_SLOTS: u32 = 256;

/// What the fake backend observed and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetbackStats {
    /// Notifications found pending on our port.
    pub notifications_received: u64,
    /// Notifications we sent.
    pub notifications_sent: u64,
    /// Tx requests consumed.
    pub tx_requests: u64,
    /// Rx frames written into frontend buffers.
    pub rx_delivered: u64,
    /// Times the rings were mapped (connections).
    pub connects: u64,
    /// Protocol errors seen (e.g. a frontend in `InitWait`, bad keys).
    pub errors: Vec<String>,
}

struct Conn {
    tx: SimMapping,
    rx: SimMapping,
    port: Port,
    tx_req_cons: u32,
    tx_rsp_prod_pvt: u32,
    rx_req_cons: u32,
    rx_rsp_prod_pvt: u32,
    last_tx_id: Option<u16>,
    last_rx_id: Option<u16>,
    /// Stopped on the budget with requests left.
    tx_more: bool,
    /// Ran out of rx requests with frames queued: req_event is armed and
    /// only a notification (feature-rx-notify) makes us look again.
    rx_stalled: bool,
    /// Frontend negotiated values.
    rx_notify: bool,
    no_csum_offload: bool,
}

struct Inner {
    client: Client<SimXsRing>,
    gnt: SimGnttab,
    evt: SimEvtchn,
    fe_dom: DomId,
    fe_path: String,
    be_path: String,
    state: XenbusState,
    conn: Option<Conn>,
    tx_frames: VecDeque<Vec<u8>>,
    rx_queue: VecDeque<Vec<u8>>,
    faults: VecDeque<NetbackFault>,
    never_connect: bool,
    tx_budget: usize,
    hold_tx: usize,
    held: Vec<SimMapping>,
    stats: NetbackStats,
}

/// Handle to a fake netback; clones share it.
#[derive(Clone)]
pub struct Netback {
    inner: Rc<RefCell<Inner>>,
    xen: Xen,
}

fn ring_u16(p: &impl SharedPage, off: usize) -> u16 {
    let mut b = [0u8; 2];
    p.read_bytes(off, &mut b);
    u16::from_le_bytes(b)
}

/// `RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`.
fn push_responses(p: &impl SharedPage, new: u32) -> bool {
    let old = p.read_u32(RSP_PROD);
    p.write_u32(RSP_PROD, new);
    let event = p.read_u32(RSP_EVENT);
    new.wrapping_sub(event) < new.wrapping_sub(old)
}

/// `RING_FINAL_CHECK_FOR_REQUESTS`.
fn final_check_requests(p: &impl SharedPage, cons: u32) -> bool {
    if p.read_u32(REQ_PROD) != cons {
        return true;
    }
    p.write_u32(REQ_EVENT, cons.wrapping_add(1));
    p.read_u32(REQ_PROD) != cons
}

impl Netback {
    /// Sets up vif `devid` of domain `fe_dom` with MAC `mac`, its backend
    /// in dom0 (created if absent), and the backend in `InitWait`. The
    /// frontend directory is `/local/domain/<fe_dom>/device/vif/<devid>`.
    pub fn new(xen: &Xen, fe_dom: DomId, devid: u32, mac: [u8; 6]) -> Netback {
        let dom0 = if xen.domains().contains(&0) {
            xen.domain(0)
        } else {
            xen.create_domain(0)
        };
        let mut c = dom0.xenstore_client();
        let fe_path = format!("/local/domain/{fe_dom}/device/vif/{devid}");
        let be_path = format!("/local/domain/0/backend/vif/{fe_dom}/{devid}");
        let mac_s = mac
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        let w = |c: &mut Client<SimXsRing>, p: String, v: &str| {
            c.write(&p, v.as_bytes())
                .unwrap_or_else(|e| panic!("netback setup: write {p}: {e}"))
        };
        // Toolstack: frontend directory, owned by the guest, readable by
        // the backend.
        c.mkdir(&fe_path).unwrap();
        c.set_perms(
            &fe_path,
            &[
                Permission::new(fe_dom, Access::None),
                Permission::new(0, Access::Read),
            ],
        )
        .unwrap();
        w(&mut c, format!("{fe_path}/backend"), &be_path);
        w(&mut c, format!("{fe_path}/backend-id"), "0");
        w(&mut c, format!("{fe_path}/mac"), &mac_s);
        w(&mut c, format!("{fe_path}/handle"), &devid.to_string());
        w(&mut c, format!("{fe_path}/state"), "1");
        // Toolstack: backend directory, readable by the guest.
        c.mkdir(&be_path).unwrap();
        c.set_perms(
            &be_path,
            &[
                Permission::new(0, Access::None),
                Permission::new(fe_dom, Access::Read),
            ],
        )
        .unwrap();
        w(&mut c, format!("{be_path}/frontend"), &fe_path);
        w(
            &mut c,
            format!("{be_path}/frontend-id"),
            &fe_dom.to_string(),
        );
        w(&mut c, format!("{be_path}/mac"), &mac_s);
        w(&mut c, format!("{be_path}/handle"), &devid.to_string());
        w(&mut c, format!("{be_path}/state"), "1");
        // Netback probe: features, then InitWait.
        w(&mut c, format!("{be_path}/feature-rx-copy"), "1");
        w(&mut c, format!("{be_path}/feature-rx-flip"), "0");
        switch_state(&mut c, &format!("{be_path}/state"), XenbusState::InitWait).unwrap();
        Netback {
            inner: Rc::new(RefCell::new(Inner {
                client: c,
                gnt: dom0.gnttab(),
                evt: dom0.evtchn(),
                fe_dom,
                fe_path,
                be_path,
                state: XenbusState::InitWait,
                conn: None,
                tx_frames: VecDeque::new(),
                rx_queue: VecDeque::new(),
                faults: VecDeque::new(),
                never_connect: false,
                tx_budget: usize::MAX,
                hold_tx: 0,
                held: Vec::new(),
                stats: NetbackStats::default(),
            })),
            xen: xen.clone(),
        }
    }

    /// Runs [`step`](Self::step) on every simulated wait.
    pub fn install_hook(&self) {
        let nb = self.clone();
        self.xen.set_step_hook(move || nb.step());
    }

    /// The frontend directory (absolute).
    pub fn frontend_path(&self) -> String {
        self.inner.borrow().fe_path.clone()
    }

    /// The backend directory.
    pub fn backend_path(&self) -> String {
        self.inner.borrow().be_path.clone()
    }

    /// The backend's xenbus state.
    pub fn state(&self) -> XenbusState {
        self.inner.borrow().state
    }

    /// Whether the rings are mapped.
    pub fn is_connected(&self) -> bool {
        self.inner.borrow().conn.is_some()
    }

    /// Frames the frontend sent, oldest first, removed from the queue.
    pub fn take_tx(&self) -> Vec<Vec<u8>> {
        self.inner.borrow_mut().tx_frames.drain(..).collect()
    }

    /// Queues a frame for the frontend (delivered on later steps).
    pub fn inject_rx(&self, frame: Vec<u8>) {
        self.inner.borrow_mut().rx_queue.push_back(frame);
    }

    /// Frames injected and not yet delivered.
    pub fn rx_backlog(&self) -> usize {
        self.inner.borrow().rx_queue.len()
    }

    /// Queues a misbehaviour.
    pub fn push_fault(&self, f: NetbackFault) {
        self.inner.borrow_mut().faults.push_back(f);
    }

    /// Faults not yet applied.
    pub fn pending_faults(&self) -> usize {
        self.inner.borrow().faults.len()
    }

    /// Stay in `InitWait` forever.
    pub fn set_never_connect(&self, on: bool) {
        self.inner.borrow_mut().never_connect = on;
    }

    /// Consume at most `n` tx requests per step (default: unlimited).
    pub fn set_tx_budget(&self, n: usize) {
        self.inner.borrow_mut().tx_budget = n.max(1);
    }

    /// Keep the next `n` tx buffer mappings after answering (until
    /// [`release_held`](Self::release_held)), so the frontend's revoke
    /// fails with `EBUSY`.
    pub fn hold_tx_mappings(&self, n: usize) {
        self.inner.borrow_mut().hold_tx = n;
    }

    /// Unmaps buffers kept by [`hold_tx_mappings`](Self::hold_tx_mappings).
    pub fn release_held(&self) {
        let mut i = self.inner.borrow_mut();
        let held: Vec<_> = i.held.drain(..).collect();
        for m in held {
            i.gnt.unmap(m).unwrap();
        }
    }

    /// Statistics so far.
    pub fn stats(&self) -> NetbackStats {
        self.inner.borrow().stats.clone()
    }

    /// The negotiated `feature-no-csum-offload` (None before connecting).
    pub fn frontend_no_csum_offload(&self) -> Option<bool> {
        self.inner.borrow().conn.as_ref().map(|c| c.no_csum_offload)
    }

    /// The negotiated `feature-rx-notify` (None before connecting).
    pub fn frontend_rx_notify(&self) -> Option<bool> {
        self.inner.borrow().conn.as_ref().map(|c| c.rx_notify)
    }

    /// One round: follow the frontend's state, then move data. Does
    /// nothing if called re-entrantly (from a wait inside a step).
    pub fn step(&self) {
        let Ok(mut i) = self.inner.try_borrow_mut() else {
            return;
        };
        i.xenbus();
        if i.conn.is_some() {
            i.data();
        }
    }
}

impl Inner {
    fn set_state(&mut self, s: XenbusState) {
        let path = format!("{}/state", self.be_path);
        switch_state(&mut self.client, &path, s).unwrap();
        self.state = s;
    }

    fn error(&mut self, msg: String) {
        self.stats.errors.push(msg);
    }

    fn xenbus(&mut self) {
        use XenbusState::*;
        let fe_state_path = format!("{}/state", self.fe_path);
        let fs = match read_state(&mut self.client, &fe_state_path) {
            Ok(s) => s,
            Err(e) => {
                self.error(format!("reading frontend state: {e}"));
                return;
            }
        };
        match fs {
            Initialising => {
                if self.state != InitWait {
                    // Frontend restarted or reconnecting after Closed.
                    self.disconnect();
                    self.set_state(InitWait);
                }
            }
            Initialised => {}
            Connected => {
                if self.state == InitWait && !self.never_connect {
                    match self.connect() {
                        Ok(()) => self.set_state(Connected),
                        Err(e) => {
                            self.error(e);
                            self.set_state(Closing);
                        }
                    }
                }
            }
            Closing => {
                if self.state != Closing && self.state != Closed {
                    self.disconnect();
                    self.set_state(Closing);
                }
            }
            Closed => {
                if self.state != Closed {
                    self.disconnect();
                    self.set_state(Closed);
                }
            }
            Unknown => {}
            other => {
                if self.state != Closing && self.state != Closed {
                    self.error(format!("saw state {} at frontend", other.number()));
                    self.disconnect();
                    self.set_state(Closing);
                }
            }
        }
    }

    fn read_u32_node(&mut self, key: &str) -> Result<u32, String> {
        let p = format!("{}/{key}", self.fe_path);
        let v = self
            .client
            .read_string(&p)
            .map_err(|e| format!("reading {p}: {e}"))?;
        v.parse().map_err(|_| format!("{p} = {v:?} is no number"))
    }

    fn read_flag(&mut self, key: &str) -> bool {
        self.read_u32_node(key).map(|v| v != 0).unwrap_or(false)
    }

    fn connect(&mut self) -> Result<(), String> {
        let tx_ref = self.read_u32_node("tx-ring-ref")?;
        let rx_ref = self.read_u32_node("rx-ring-ref")?;
        let evtchn = self.read_u32_node("event-channel")?;
        if !self.read_flag("request-rx-copy") {
            return Err("frontend did not request rx-copy".into());
        }
        let rx_notify = self.read_flag("feature-rx-notify");
        let no_csum_offload = self.read_flag("feature-no-csum-offload");
        let fe = self.fe_dom;
        let tx = self
            .gnt
            .map(fe, tx_ref, false)
            .map_err(|e| format!("mapping tx ring: {e:?}"))?;
        let rx = match self.gnt.map(fe, rx_ref, false) {
            Ok(m) => m,
            Err(e) => {
                self.gnt.unmap(tx).unwrap();
                return Err(format!("mapping rx ring: {e:?}"));
            }
        };
        let port = match self.evt.bind_interdomain(fe, evtchn) {
            Ok(p) => p,
            Err(e) => {
                self.gnt.unmap(tx).unwrap();
                self.gnt.unmap(rx).unwrap();
                return Err(format!("binding event channel: {e:?}"));
            }
        };
        // BACK_RING_ATTACH: continue from whatever the shared indices say.
        let tx_rsp = tx.read_u32(RSP_PROD);
        let rx_rsp = rx.read_u32(RSP_PROD);
        self.conn = Some(Conn {
            tx,
            rx,
            port,
            tx_req_cons: tx_rsp,
            tx_rsp_prod_pvt: tx_rsp,
            rx_req_cons: rx_rsp,
            rx_rsp_prod_pvt: rx_rsp,
            last_tx_id: None,
            last_rx_id: None,
            tx_more: true,
            rx_stalled: false,
            rx_notify,
            no_csum_offload,
        });
        self.stats.connects += 1;
        Ok(())
    }

    fn disconnect(&mut self) {
        for m in self.held.drain(..) {
            self.gnt.unmap(m).unwrap();
        }
        if let Some(c) = self.conn.take() {
            self.gnt.unmap(c.tx).unwrap();
            self.gnt.unmap(c.rx).unwrap();
            self.evt.close(c.port).unwrap();
        }
    }

    fn data(&mut self) {
        let Some(port) = self.conn.as_ref().map(|c| c.port) else {
            return;
        };
        let kicked = self.evt.take_pending(port);
        if kicked {
            self.stats.notifications_received += 1;
        }
        let (tx_more, rx_stalled) = self
            .conn
            .as_ref()
            .map_or((false, false), |c| (c.tx_more, c.rx_stalled));
        let mut notify = false;
        if kicked || tx_more {
            notify |= self.do_tx();
        }
        if !self.rx_queue.is_empty() && (kicked || !rx_stalled) {
            notify |= self.do_rx();
        }
        if notify {
            self.stats.notifications_sent += 1;
            self.evt.notify(port).unwrap();
        }
    }
}
