//! A fake netback: the dom0 end of a vif, for testing netfront.
//!
//! [`Netback::new`] plays the toolstack (frontend and backend xenstore
//! directories with permissions, `mac`, `backend`, `backend-id`) and the
//! backend's probe (features, `InitWait`). Each [`step`](Netback::step) —
//! explicit, or from xensim's step hook via
//! [`install_hook`](Netback::install_hook) — follows the frontend's
//! xenbus state the way Linux netback does (it reads the frontend's
//! features and maps the rings when the frontend turns `Connected`; a
//! frontend in `InitWait` is an error), consumes tx requests into a queue
//! the test reads, and delivers packets the test injected into posted rx
//! buffers.
//!
//! Both rings follow Linux 6.1 netback: scatter-gather chains, GSO extra
//! slots, checksum-offload flags, and the checks Linux makes of a
//! frontend (every violation lands in [`NetbackStats::errors`]; the fatal
//! ones also [disable](Netback::is_disabled) the vif until it reconnects).
//!
//! The ring code here is written from `netif.h`/`ring.h` independently
//! of the netfront crate, so a layout mistake on either side shows up.
//! Knobs ([`NetbackFault`], [`Netback::set_never_connect`],
//! [`Netback::hold_tx_mappings`], [`Netback::set_tx_reverse_responses`],
//! [`Netback::make_deaf`])
//! make it misbehave.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use xen_proto::iface::{DomId, EventChannels, GrantTable, Port, SharedPage};
use xen_proto::xenbus::{switch_state, XenbusState};
use xen_proto::xenstore::Client;
use xenstore_wire::{Access, Permission};

mod faults;
mod inet;
mod rx;
mod tx;
mod xenbus;

pub use faults::NetbackFault;
pub use rx::RxPacket;
pub use tx::{TxGso, TxPacket};

use crate::evtchn::SimEvtchn;
use crate::gnttab::SimGnttab;
use crate::page::SimMapping;
use crate::xen::Xen;
use crate::xsring::SimXsRing;

// Shared ring header (ring.h).
const REQ_PROD: usize = 0;
const REQ_EVENT: usize = 4;
const RSP_PROD: usize = 8;
const RSP_EVENT: usize = 12;
const RING_HDR: usize = 64;
const RING_SLOTS: u32 = 256;

// Response status of both rings (netif.h).
const RSP_OKAY: i16 = 0;
const RSP_ERROR: i16 = -1;
const RSP_NULL: i16 = 1;

// netif_extra_info (netif.h).
const EXTRA_TYPE_GSO: u8 = 1;
const EXTRA_FLAG_MORE: u8 = 1;
const GSO_TYPE_TCPV4: u8 = 1;

/// What the backend offers the frontend (keys in the backend directory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetbackFeatures {
    /// `feature-sg`: multi-slot tx packets accepted.
    pub sg: bool,
    /// `feature-gso-tcpv4`: tx GSO extras of type TCPv4 accepted.
    pub gso_tcpv4: bool,
    /// IPv4 tx checksum offload; off writes `feature-no-csum-offload=1`.
    pub csum_offload: bool,
}

/// What Linux 6.1 netback writes: all three on.
impl Default for NetbackFeatures {
    fn default() -> Self {
        NetbackFeatures { sg: true, gso_tcpv4: true, csum_offload: true }
    }
}

/// What the frontend wrote in its directory, read at connect (absent
/// keys read as 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrontendFeatures {
    /// `request-rx-copy` (connecting fails without it).
    pub rx_copy: bool,
    /// `feature-rx-notify`.
    pub rx_notify: bool,
    /// `feature-sg`: multi-slot rx packets accepted.
    pub sg: bool,
    /// `feature-gso-tcpv4`: rx GSO packets accepted.
    pub gso_tcpv4: bool,
    /// `feature-no-csum-offload`: no rx `csum_blank` packets.
    pub no_csum_offload: bool,
}

/// What the fake backend observed and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetbackStats {
    /// Notifications found pending on our port.
    pub notifications_received: u64,
    /// Notifications we sent.
    pub notifications_sent: u64,
    /// Tx requests (slots, extras included) consumed.
    pub tx_requests: u64,
    /// Tx `csum_blank` packets whose checksum we completed and verified.
    pub tx_csum_completed: u64,
    /// Tx packets with a GSO extra.
    pub tx_gso_packets: u64,
    /// Rx packets written into frontend buffers.
    pub rx_delivered: u64,
    /// Times the rings were mapped (connections).
    pub connects: u64,
    /// Protocol errors seen (e.g. a frontend in `InitWait`, bad keys, a
    /// tx chain Linux would refuse, an rx packet the frontend did not
    /// negotiate).
    pub errors: Vec<String>,
}

struct Conn {
    tx: SimMapping,
    rx: SimMapping,
    port: Port,
    fe: FrontendFeatures,
    tx_req_cons: u32,
    tx_rsp_prod_pvt: u32,
    rx_req_cons: u32,
    rx_rsp_prod_pvt: u32,
    last_tx_id: Option<u16>,
    last_rx_id: Option<u16>,
    /// Stopped on the budget with requests left.
    tx_more: bool,
    /// Not enough rx requests for the head packet: req_event is armed and
    /// only a notification (feature-rx-notify) makes us look again.
    rx_stalled: bool,
    /// A fatal frontend error stopped the vif (`xenvif_fatal_tx_err`).
    disabled: bool,
}

/// An injected rx packet and the hostile variant it was injected under.
struct QueuedRx {
    packet: RxPacket,
    hostile: Option<NetbackFault>,
}

struct Inner {
    client: Client<SimXsRing>,
    gnt: SimGnttab,
    evt: SimEvtchn,
    fe_dom: DomId,
    fe_path: String,
    be_path: String,
    features: NetbackFeatures,
    state: XenbusState,
    conn: Option<Conn>,
    tx_packets: VecDeque<TxPacket>,
    rx_queue: VecDeque<QueuedRx>,
    faults: VecDeque<NetbackFault>,
    never_connect: bool,
    /// Handle no notification and no tx request until the frontend
    /// connects again: Linux's netback with its port left masked (see
    /// [`Netback::make_deaf`]).
    deaf: bool,
    tx_budget: usize,
    tx_reverse: bool,
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

/// Where entry `idx` of a ring of `entry`-byte slots starts.
fn slot_offset(idx: u32, entry: usize) -> usize {
    RING_HDR + (idx % RING_SLOTS) as usize * entry
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

/// The 8 bytes of a GSO `netif_extra_info`.
fn gso_extra(size: u16, kind: u8, flags: u8) -> [u8; 8] {
    let s = size.to_le_bytes();
    [EXTRA_TYPE_GSO, flags, s[0], s[1], kind, 0, 0, 0]
}

impl Netback {
    /// Sets up vif `devid` of domain `fe_dom` with MAC `mac` and the
    /// features Linux 6.1 offers, its backend in dom0 (created if
    /// absent), and the backend in `InitWait`. The frontend directory is
    /// `/local/domain/<fe_dom>/device/vif/<devid>`.
    pub fn new(xen: &Xen, fe_dom: DomId, devid: u32, mac: [u8; 6]) -> Netback {
        Netback::new_with(xen, fe_dom, devid, mac, NetbackFeatures::default())
    }

    /// [`new`](Self::new), offering `features` instead. Features that are
    /// off are left out of the backend directory (as older backends do),
    /// except checksum offload, which is on unless
    /// `feature-no-csum-offload=1` says otherwise.
    pub fn new_with(xen: &Xen, fe_dom: DomId, devid: u32, mac: [u8; 6], features: NetbackFeatures) -> Netback {
        let dom0 = if xen.domains().contains(&0) { xen.domain(0) } else { xen.create_domain(0) };
        let mut c = dom0.xenstore_client();
        let fe_path = format!("/local/domain/{fe_dom}/device/vif/{devid}");
        let be_path = format!("/local/domain/0/backend/vif/{fe_dom}/{devid}");
        let mac_s = mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
        let w = |c: &mut Client<SimXsRing>, p: String, v: &str| {
            c.write(&p, v.as_bytes()).unwrap_or_else(|e| panic!("netback setup: write {p}: {e}"))
        };
        // Toolstack: frontend directory, owned by the guest, readable by
        // the backend.
        c.mkdir(&fe_path).unwrap();
        c.set_perms(&fe_path, &[Permission::new(fe_dom, Access::None), Permission::new(0, Access::Read)]).unwrap();
        w(&mut c, format!("{fe_path}/backend"), &be_path);
        w(&mut c, format!("{fe_path}/backend-id"), "0");
        w(&mut c, format!("{fe_path}/mac"), &mac_s);
        w(&mut c, format!("{fe_path}/handle"), &devid.to_string());
        w(&mut c, format!("{fe_path}/state"), "1");
        // Toolstack: backend directory, readable by the guest.
        c.mkdir(&be_path).unwrap();
        c.set_perms(&be_path, &[Permission::new(0, Access::None), Permission::new(fe_dom, Access::Read)]).unwrap();
        w(&mut c, format!("{be_path}/frontend"), &fe_path);
        w(&mut c, format!("{be_path}/frontend-id"), &fe_dom.to_string());
        w(&mut c, format!("{be_path}/mac"), &mac_s);
        w(&mut c, format!("{be_path}/handle"), &devid.to_string());
        w(&mut c, format!("{be_path}/state"), "1");
        // Netback probe: features, then InitWait.
        if features.sg {
            w(&mut c, format!("{be_path}/feature-sg"), "1");
        }
        if features.gso_tcpv4 {
            w(&mut c, format!("{be_path}/feature-gso-tcpv4"), "1");
        }
        if !features.csum_offload {
            w(&mut c, format!("{be_path}/feature-no-csum-offload"), "1");
        }
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
                features,
                state: XenbusState::InitWait,
                conn: None,
                tx_packets: VecDeque::new(),
                rx_queue: VecDeque::new(),
                faults: VecDeque::new(),
                never_connect: false,
                deaf: false,
                tx_budget: usize::MAX,
                tx_reverse: false,
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

    /// What the backend offers.
    pub fn features(&self) -> NetbackFeatures {
        self.inner.borrow().features
    }

    /// Whether the rings are mapped.
    pub fn is_connected(&self) -> bool {
        self.inner.borrow().conn.is_some()
    }

    /// Whether a fatal frontend error stopped the vif (Linux's
    /// `xenvif_fatal_tx_err`): nothing moves until the frontend
    /// reconnects.
    pub fn is_disabled(&self) -> bool {
        self.inner.borrow().conn.as_ref().is_some_and(|c| c.disabled)
    }

    /// Frames the frontend sent, oldest first, removed from the queue
    /// (the bytes of [`take_tx_packets`](Self::take_tx_packets)).
    pub fn take_tx(&self) -> Vec<Vec<u8>> {
        self.take_tx_packets().into_iter().map(|p| p.data).collect()
    }

    /// Packets the frontend sent, with their offload flags, oldest
    /// first, removed from the queue.
    pub fn take_tx_packets(&self) -> Vec<TxPacket> {
        self.inner.borrow_mut().tx_packets.drain(..).collect()
    }

    /// Queues a plain frame for the frontend (no checksum flags, no GSO).
    pub fn inject_rx(&self, frame: Vec<u8>) {
        self.inject_rx_packet(RxPacket::plain(frame));
    }

    /// Queues a packet for the frontend (delivered on later steps). It
    /// takes the first pending hostile rx fault (see [`NetbackFault`]).
    pub fn inject_rx_packet(&self, packet: RxPacket) {
        let mut i = self.inner.borrow_mut();
        let hostile = i.take_fault(faults::Applies::RxPacket);
        i.rx_queue.push_back(QueuedRx { packet, hostile });
    }

    /// Packets injected and not yet delivered.
    pub fn rx_backlog(&self) -> usize {
        self.inner.borrow().rx_queue.len()
    }

    /// Queues a misbehaviour.
    pub fn push_fault(&self, f: NetbackFault) {
        self.inner.borrow_mut().faults.push_back(f);
    }

    /// Faults not yet applied (hostile rx faults count until their
    /// packet is delivered).
    pub fn pending_faults(&self) -> usize {
        let i = self.inner.borrow();
        i.faults.len() + i.rx_queue.iter().filter(|q| q.hostile.is_some()).count()
    }

    /// Stay in `InitWait` forever.
    pub fn set_never_connect(&self, on: bool) {
        self.inner.borrow_mut().never_connect = on;
    }

    /// From now until the frontend connects again, take no tx request and
    /// drop its notifications; deliver rx as before. Linux's netback does
    /// that when the rx thread sends the EOI owed for the event Xen leaves
    /// pending at binding before the irq number is stored (issue 14): the
    /// port stays masked.
    pub fn make_deaf(&self) {
        self.inner.borrow_mut().deaf = true;
    }

    /// Consume at most `n` tx requests per step (default: unlimited). The
    /// budget is checked between packets, so a packet is never split.
    pub fn set_tx_budget(&self, n: usize) {
        self.inner.borrow_mut().tx_budget = n.max(1);
    }

    /// Answer the data slots of each tx packet last to first (Linux
    /// answers mapped slots late and in any order). The first slot's
    /// extra NULL responses still follow it directly.
    pub fn set_tx_reverse_responses(&self, on: bool) {
        self.inner.borrow_mut().tx_reverse = on;
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

    /// What the frontend negotiated (None before connecting).
    pub fn frontend_features(&self) -> Option<FrontendFeatures> {
        self.inner.borrow().conn.as_ref().map(|c| c.fe)
    }

    /// The negotiated `feature-no-csum-offload` (None before connecting).
    pub fn frontend_no_csum_offload(&self) -> Option<bool> {
        self.frontend_features().map(|f| f.no_csum_offload)
    }

    /// The negotiated `feature-rx-notify` (None before connecting).
    pub fn frontend_rx_notify(&self) -> Option<bool> {
        self.frontend_features().map(|f| f.rx_notify)
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
    fn data(&mut self) {
        let Some(port) = self.conn.as_ref().map(|c| c.port) else {
            return;
        };
        let kicked = self.evt.take_pending(port) && !self.deaf;
        if kicked {
            self.stats.notifications_received += 1;
        }
        let (tx_more, rx_stalled, disabled) =
            self.conn.as_ref().map_or((false, false, true), |c| (c.tx_more, c.rx_stalled, c.disabled));
        if disabled {
            return;
        }
        let mut notify = false;
        if (kicked || tx_more) && !self.deaf {
            notify |= self.do_tx();
        }
        let disabled = self.conn.as_ref().is_none_or(|c| c.disabled);
        if !disabled && !self.rx_queue.is_empty() && (kicked || !rx_stalled) {
            notify |= self.do_rx();
        }
        if notify {
            self.stats.notifications_sent += 1;
            self.evt.notify(port).unwrap();
        }
    }
}
