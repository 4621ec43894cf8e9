//! The rx ring: frames to the frontend.

use xen_proto::iface::{GrantTable, SharedPage};

use super::faults::NetbackFault;
use super::{
    final_check_requests, push_responses, ring_u16, Inner, REQ_PROD, RING_HDR, RING_SLOTS,
};
use crate::page::SimMapping;

const RX_SLOT: usize = 8;
const RSP_ERROR: i16 = -1;

impl Inner {
    /// Delivers queued frames into posted buffers; true if the frontend
    /// must be notified.
    pub(super) fn do_rx(&mut self) -> bool {
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

fn write_rx_rsp(p: &SimMapping, idx: u32, id: u16, offset: u16, flags: u16, status: i16) {
    let at = RING_HDR + (idx % RING_SLOTS) as usize * RX_SLOT;
    let mut b = [0u8; 8];
    b[..2].copy_from_slice(&id.to_le_bytes());
    b[2..4].copy_from_slice(&offset.to_le_bytes());
    b[4..6].copy_from_slice(&flags.to_le_bytes());
    b[6..].copy_from_slice(&status.to_le_bytes());
    p.write_bytes(at, &b);
}
