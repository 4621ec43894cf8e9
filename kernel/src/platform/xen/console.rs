//! The PV console: bytes go into the `out` ring of `struct xencons_interface`
//! (`public/io/console.h`) and xenconsoled is notified; `xl console` and
//! xenconsoled's logs show them.

use super::page::PhysPage;
use ::xen::abi::ops::hvmop;
use ::xen::hypercall;
use core::sync::atomic::{fence, Ordering};
use xen_proto::iface::SharedPage;

mod layout {
    pub const OUT: usize = 1024;
    pub const OUT_SIZE: u32 = 2048;
    pub const OUT_CONS: usize = 3080;
    pub const OUT_PROD: usize = 3084;
}

/// How often a full ring is retried (yielding to dom0) before a byte is
/// dropped: console output must never wedge the kernel (xenconsoled gone).
const FULL_RETRIES: u32 = 100_000;

pub struct ConsoleRing {
    page: PhysPage,
    port: u32,
}

impl ConsoleRing {
    /// The console Xen set up for this domain, from the HVM params.
    pub fn open() -> Option<ConsoleRing> {
        let pfn = hypercall::hvm_get_param(hvmop::PARAM_CONSOLE_PFN).ok().filter(|&p| p != 0)?;
        let port = hypercall::hvm_get_param(hvmop::PARAM_CONSOLE_EVTCHN).ok()? as u32;
        let addr = pfn.checked_mul(4096).filter(|&a| a < crate::arch::paging::IDENTITY_MAP_END)?;
        // SAFETY: the console page is a special page Xen keeps mapped in our
        // physmap for the domain's life, below 4 GiB (checked).
        let page = unsafe { PhysPage::new(addr) };
        Some(ConsoleRing { page, port })
    }

    pub fn write(&mut self, bytes: &[u8]) {
        let mut prod = self.page.read_u32(layout::OUT_PROD);
        for &b in bytes {
            let mut retries = 0;
            // Free space from xenconsoled's consumer index (read fresh: it
            // moves as dom0 drains the ring).
            while prod.wrapping_sub(self.page.read_u32(layout::OUT_CONS)) >= layout::OUT_SIZE {
                self.publish(prod);
                retries += 1;
                if retries > FULL_RETRIES {
                    break;
                }
                let _ = hypercall::sched_yield();
            }
            if retries > FULL_RETRIES {
                continue;
            }
            self.page.write_bytes(layout::OUT + (prod % layout::OUT_SIZE) as usize, &[b]);
            prod = prod.wrapping_add(1);
        }
        self.publish(prod);
    }

    fn publish(&self, prod: u32) {
        // Release: the bytes are visible before the producer index moves.
        fence(Ordering::Release);
        self.page.write_u32(layout::OUT_PROD, prod);
        let _ = hypercall::evtchn_send(self.port);
    }

    /// Waits (bounded) until xenconsoled has read everything, so output
    /// written just before shutdown is not lost.
    pub fn flush(&self) {
        for _ in 0..FULL_RETRIES {
            if self.page.read_u32(layout::OUT_CONS) == self.page.read_u32(layout::OUT_PROD) {
                return;
            }
            let _ = hypercall::sched_yield();
        }
    }
}
