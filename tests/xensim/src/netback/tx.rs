//! The tx ring: frames from the frontend.

use xen_proto::iface::{GrantTable, SharedPage, PAGE_SIZE};

use super::faults::NetbackFault;
use super::{
    final_check_requests, push_responses, ring_u16, Inner, REQ_PROD, RING_HDR, RING_SLOTS,
};
use crate::page::SimMapping;

const TX_SLOT: usize = 12;
const NETTXF_MORE_DATA: u16 = 4;
const NETTXF_EXTRA_INFO: u16 = 8;
const RSP_OKAY: i16 = 0;
const RSP_ERROR: i16 = -1;

impl Inner {
    /// Consumes tx requests; true if the frontend must be notified.
    pub(super) fn do_tx(&mut self) -> bool {
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
}

fn write_tx_rsp(p: &SimMapping, idx: u32, id: u16, status: i16) {
    let at = RING_HDR + (idx % RING_SLOTS) as usize * TX_SLOT;
    let mut b = [0u8; 4];
    b[..2].copy_from_slice(&id.to_le_bytes());
    b[2..].copy_from_slice(&status.to_le_bytes());
    p.write_bytes(at, &b);
}
