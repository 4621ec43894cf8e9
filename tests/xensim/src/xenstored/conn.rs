//! Serving one domain's ring: pull requests from `req`, push replies and
//! watch events into `rsp`, honouring the fault knobs.

use xen_proto::iface::DomId;
use xenstore_wire::ring::{self, offset};
use xenstore_wire::{Header, Message, MsgType};

use super::{Xenstored, XsFault};
use crate::page::Mem;

fn rd(mem: &Mem, off: usize) -> u32 {
    let m = mem.borrow();
    u32::from_le_bytes([m[off], m[off + 1], m[off + 2], m[off + 3]])
}

fn wr(mem: &Mem, off: usize, v: u32) {
    mem.borrow_mut()[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

impl Xenstored {
    /// Serves `domid` once; true if any byte moved either way.
    pub fn service(&mut self, domid: DomId, mem: &Mem) -> bool {
        let Some(conn) = self.conns.get_mut(&domid) else {
            return false;
        };
        if conn.broken || conn.fault == XsFault::Stalled {
            return false;
        }
        let mut progress = false;
        // Pull request bytes.
        let (cons, prod) = (rd(mem, offset::REQ_CONS), rd(mem, offset::REQ_PROD));
        if ring::check(cons, prod).is_err() {
            return self.break_conn(domid, mem, ring::ERROR_RINGIDX);
        }
        let mut c = cons;
        while c != prod {
            let Ok(chunk) = ring::read_chunk(c, prod) else {
                break;
            };
            let bytes = mem.borrow()[offset::REQ + chunk.start..offset::REQ + chunk.end].to_vec();
            c = ring::advance(c, bytes.len());
            if conn.decoder.push(&bytes).is_err() {
                wr(mem, offset::REQ_CONS, c);
                return self.break_conn(domid, mem, ring::ERROR_PROTO);
            }
        }
        if c != cons {
            wr(mem, offset::REQ_CONS, c);
            progress = true;
        }
        // Answer complete requests.
        let mut msgs = Vec::new();
        while let Some(m) = conn.decoder.next_message() {
            msgs.push(m);
        }
        for m in msgs {
            self.answer(domid, &m);
        }
        progress | self.push_out(domid, mem)
    }

    fn answer(&mut self, domid: DomId, m: &Message) {
        let mut initial = Vec::new();
        let result = self.handle(domid, m, &mut initial);
        let (ty, payload) = match result {
            Ok(p) => (m.msg_type(), p),
            Err(e) => (MsgType::Error, format!("{}\0", e.as_str()).into_bytes()),
        };
        let Some(conn) = self.conns.get_mut(&domid) else {
            return;
        };
        let mut h = Header { msg_type: ty, req_id: m.req_id(), tx_id: m.tx_id(), len: payload.len() as u32 };
        match conn.fault {
            XsFault::None | XsFault::Stalled => {}
            XsFault::NeverAnswer => return,
            XsFault::WrongType => {
                h.msg_type = if ty == MsgType::Read { MsgType::Directory } else { MsgType::Read };
            }
            XsFault::Garbage => {
                conn.out.extend([0xffu8; 24]);
                return;
            }
            XsFault::UnknownReqId => h.req_id = m.req_id() ^ 0x8000_0000,
            XsFault::OversizedLen => {
                let mut bytes = h.to_bytes();
                bytes[12..16].copy_from_slice(&4097u32.to_le_bytes());
                conn.out.extend(bytes);
                conn.out.extend([0u8; 32]);
                return;
            }
        }
        conn.out.extend(h.to_bytes());
        conn.out.extend(payload);
        for idx in initial {
            self.fire_initial(idx);
        }
    }

    /// Copies queued output into the response ring as space allows.
    fn push_out(&mut self, domid: DomId, mem: &Mem) -> bool {
        let Some(conn) = self.conns.get_mut(&domid) else {
            return false;
        };
        let (cons, prod) = (rd(mem, offset::RSP_CONS), rd(mem, offset::RSP_PROD));
        if ring::check(cons, prod).is_err() {
            return self.break_conn(domid, mem, ring::ERROR_RINGIDX);
        }
        let mut p = prod;
        while !conn.out.is_empty() {
            let Ok(chunk) = ring::write_chunk(cons, p) else {
                break;
            };
            if chunk.is_empty() {
                break;
            }
            let n = chunk.len().min(conn.out.len());
            let bytes: Vec<u8> = conn.out.drain(..n).collect();
            mem.borrow_mut()[offset::RSP + chunk.start..offset::RSP + chunk.start + n].copy_from_slice(&bytes);
            p = ring::advance(p, n);
        }
        if p == prod {
            return false;
        }
        wr(mem, offset::RSP_PROD, p);
        true
    }

    /// Stops serving a domain that broke the protocol, recording why in
    /// the page's `error` field as real xenstored does.
    fn break_conn(&mut self, domid: DomId, mem: &Mem, error: u32) -> bool {
        if let Some(conn) = self.conns.get_mut(&domid) {
            conn.broken = true;
        }
        wr(mem, offset::ERROR, error);
        true
    }
}
