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

use xen_proto::iface::{DomId, EventChannels, GrantTable, Port, SharedPage, PAGE_SIZE};
use xen_proto::xenbus::{read_state, switch_state, XenbusState};
use xen_proto::xenstore::Client;
use xenstore_wire::{Access, Permission};

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
const TX_SLOT: usize = 12;
const RX_SLOT: usize = 8;
const NETTXF_MORE_DATA: u16 = 4;
const NETTXF_EXTRA_INFO: u16 = 8;
const RSP_OKAY: i16 = 0;
const RSP_ERROR: i16 = -1;

/// One misbehaviour, applied to the next response it fits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetbackFault {
    /// Next tx response carries this id instead of the request's.
    TxId(u16),
    /// Next tx response repeats the previous tx response's id (the
    /// request it should answer stays unanswered).
    TxDuplicate,
    /// Next tx response has this status.
    TxStatus(i16),
    /// After the next tx batch, one more tx response than requests.
    TxSpurious,
    /// Next rx response carries this id.
    RxId(u16),
    /// Next rx response repeats the previous rx response's id.
    RxDuplicate,
    /// Next rx response claims this status (size, or negative error).
    RxStatus(i16),
    /// Next rx response claims this offset.
    RxOffset(u16),
    /// Next rx response has these flags.
    RxFlags(u16),
    /// After the next rx batch, one more rx response than requests.
    RxSpurious,
}

impl NetbackFault {
    fn is_tx(self) -> bool {
        matches!(
            self,
            NetbackFault::TxId(_)
                | NetbackFault::TxDuplicate
                | NetbackFault::TxStatus(_)
                | NetbackFault::TxSpurious
        )
    }
}

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

    fn take_fault(
        &mut self,
        tx: bool,
        pred: impl Fn(NetbackFault) -> bool,
    ) -> Option<NetbackFault> {
        let i = self
            .faults
            .iter()
            .position(|f| f.is_tx() == tx && pred(*f))?;
        self.faults.remove(i)
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

    /// Consumes tx requests; true if the frontend must be notified.
    fn do_tx(&mut self) -> bool {
        let mut conn = self.conn.take().expect("connected");
        let mut done = 0;
        let budget = self.tx_budget;
        conn.tx_more = false;
        loop {
            let prod = conn.tx.read_u32(REQ_PROD);
            while conn.tx_req_cons != prod {
                if done == budget {
                    conn.tx_more = true;
                    break;
                }
                let at = RING_HDR + (conn.tx_req_cons % RING_SLOTS) as usize * TX_SLOT;
                let gref = conn.tx.read_u32(at);
                let offset = ring_u16(&conn.tx, at + 4);
                let flags = ring_u16(&conn.tx, at + 6);
                let id = ring_u16(&conn.tx, at + 8);
                let size = ring_u16(&conn.tx, at + 10);
                conn.tx_req_cons = conn.tx_req_cons.wrapping_add(1);
                done += 1;
                self.stats.tx_requests += 1;
                let mut status = RSP_OKAY;
                if usize::from(offset) + usize::from(size) > PAGE_SIZE
                    || flags & (NETTXF_MORE_DATA | NETTXF_EXTRA_INFO) != 0
                {
                    self.error(format!(
                        "bad tx request id {id}: offset {offset} size {size} flags {flags:#x}"
                    ));
                    status = RSP_ERROR;
                } else {
                    match self.gnt.map(self.fe_dom, gref, true) {
                        Ok(m) => {
                            let mut frame = vec![0u8; usize::from(size)];
                            m.read_bytes(usize::from(offset), &mut frame);
                            self.tx_frames.push_back(frame);
                            if self.hold_tx > 0 {
                                self.hold_tx -= 1;
                                self.held.push(m);
                            } else {
                                self.gnt.unmap(m).unwrap();
                            }
                        }
                        Err(e) => {
                            self.error(format!("mapping tx gref {gref}: {e:?}"));
                            status = RSP_ERROR;
                        }
                    }
                }
                let mut rid = id;
                match self.take_fault(true, |f| !matches!(f, NetbackFault::TxSpurious)) {
                    Some(NetbackFault::TxId(x)) => rid = x,
                    Some(NetbackFault::TxDuplicate) => rid = conn.last_tx_id.unwrap_or(id),
                    Some(NetbackFault::TxStatus(s)) => status = s,
                    _ => {}
                }
                conn.last_tx_id = Some(rid);
                write_tx_rsp(&conn.tx, conn.tx_rsp_prod_pvt, rid, status);
                conn.tx_rsp_prod_pvt = conn.tx_rsp_prod_pvt.wrapping_add(1);
            }
            if conn.tx_more || !final_check_requests(&conn.tx, conn.tx_req_cons) {
                break;
            }
        }
        if done > 0
            && self
                .take_fault(true, |f| f == NetbackFault::TxSpurious)
                .is_some()
        {
            write_tx_rsp(&conn.tx, conn.tx_rsp_prod_pvt, 0, RSP_OKAY);
            conn.tx_rsp_prod_pvt = conn.tx_rsp_prod_pvt.wrapping_add(1);
        }
        let notify = done > 0 && push_responses(&conn.tx, conn.tx_rsp_prod_pvt);
        self.conn = Some(conn);
        notify
    }

    /// Delivers queued frames into posted buffers; true if the frontend
    /// must be notified.
    fn do_rx(&mut self) -> bool {
        let mut conn = self.conn.take().expect("connected");
        let mut done = 0;
        conn.rx_stalled = false;
        while !self.rx_queue.is_empty() {
            if conn.rx.read_u32(REQ_PROD) == conn.rx_req_cons
                && !final_check_requests(&conn.rx, conn.rx_req_cons)
            {
                // Out of buffers: req_event is armed, wait for a kick.
                conn.rx_stalled = true;
                break;
            }
            let at = RING_HDR + (conn.rx_req_cons % RING_SLOTS) as usize * RX_SLOT;
            let id = ring_u16(&conn.rx, at);
            let gref = conn.rx.read_u32(at + 4);
            conn.rx_req_cons = conn.rx_req_cons.wrapping_add(1);
            let frame = self.rx_queue.pop_front().expect("non-empty");
            let mut status = match self.gnt.map(self.fe_dom, gref, false) {
                Ok(m) => {
                    m.write_bytes(0, &frame);
                    self.gnt.unmap(m).unwrap();
                    self.stats.rx_delivered += 1;
                    frame.len() as i16
                }
                Err(e) => {
                    self.error(format!("mapping rx gref {gref}: {e:?}"));
                    RSP_ERROR
                }
            };
            let (mut rid, mut offset, mut flags) = (id, 0u16, 0u16);
            match self.take_fault(false, |f| !matches!(f, NetbackFault::RxSpurious)) {
                Some(NetbackFault::RxId(x)) => rid = x,
                Some(NetbackFault::RxDuplicate) => rid = conn.last_rx_id.unwrap_or(id),
                Some(NetbackFault::RxStatus(s)) => status = s,
                Some(NetbackFault::RxOffset(o)) => offset = o,
                Some(NetbackFault::RxFlags(f)) => flags = f,
                _ => {}
            }
            conn.last_rx_id = Some(rid);
            write_rx_rsp(&conn.rx, conn.rx_rsp_prod_pvt, rid, offset, flags, status);
            conn.rx_rsp_prod_pvt = conn.rx_rsp_prod_pvt.wrapping_add(1);
            done += 1;
        }
        if done > 0
            && self
                .take_fault(false, |f| f == NetbackFault::RxSpurious)
                .is_some()
        {
            write_rx_rsp(&conn.rx, conn.rx_rsp_prod_pvt, 0, 0, 0, 60);
            conn.rx_rsp_prod_pvt = conn.rx_rsp_prod_pvt.wrapping_add(1);
        }
        let notify = done > 0 && push_responses(&conn.rx, conn.rx_rsp_prod_pvt);
        self.conn = Some(conn);
        notify
    }
}

fn write_tx_rsp(p: &SimMapping, idx: u32, id: u16, status: i16) {
    let at = RING_HDR + (idx % RING_SLOTS) as usize * TX_SLOT;
    let mut b = [0u8; 4];
    b[..2].copy_from_slice(&id.to_le_bytes());
    b[2..].copy_from_slice(&status.to_le_bytes());
    p.write_bytes(at, &b);
}

fn write_rx_rsp(p: &SimMapping, idx: u32, id: u16, offset: u16, flags: u16, status: i16) {
    let at = RING_HDR + (idx % RING_SLOTS) as usize * RX_SLOT;
    let mut b = [0u8; 8];
    b[..2].copy_from_slice(&id.to_le_bytes());
    b[2..4].copy_from_slice(&offset.to_le_bytes());
    b[4..6].copy_from_slice(&flags.to_le_bytes());
    b[6..].copy_from_slice(&status.to_le_bytes());
    p.write_bytes(at, &b);
}
