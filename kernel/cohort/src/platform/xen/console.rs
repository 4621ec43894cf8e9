//! The PV console: bytes go into the `out` ring of `struct xencons_interface`
//! (`public/io/console.h`) and xenconsoled is notified; `xl console` and
//! xenconsoled's logs show them.

use super::page::PhysPage;
use ::xen_abi::hypercall;
use core::sync::atomic::{fence, AtomicU64, Ordering};
use xen_proto::iface::SharedPage;

mod layout {
    pub const OUT: usize = 1024;
    pub const OUT_SIZE: u32 = 2048;
    pub const OUT_CONS: usize = 3080;
    pub const OUT_PROD: usize = 3084;
}

/// How long one write may wait for xenconsoled (yielding to dom0) before
/// the rest of it is dropped: console output must never wedge the kernel,
/// and xenconsoled can die.
const FULL_YIELDS: u32 = 2_000;

/// The ring, once open: the kernel's console from then on.
static RING: spin::Once<ConsoleRing> = spin::Once::new();

/// Opens the console Xen set up for this domain and registers it as the
/// kernel's console output; false if there is none.
pub fn register() -> bool {
    match RING.try_call_once(|| ConsoleRing::open().ok_or(())) {
        Ok(ring) => {
            crate::console::set_output(ring);
            true
        }
        Err(()) => false,
    }
}

/// Whether the PV console is the kernel's console.
pub fn is_registered() -> bool {
    RING.get().is_some()
}

/// Used by the console one call at a time, under its lock (the counters
/// are atomics only so that `&self` suffices).
pub struct ConsoleRing {
    page: PhysPage,
    port: u32,
    /// Bytes dropped because xenconsoled did not drain the ring.
    dropped: AtomicU64,
    /// `dropped` when it was last reported on the console.
    reported: AtomicU64,
}

impl crate::console::Output for ConsoleRing {
    fn write(&self, bytes: &[u8]) {
        ConsoleRing::write(self, bytes)
    }

    fn flush(&self) {
        ConsoleRing::flush(self)
    }
}

/// "\n[console: N bytes dropped]\n" into `buf`; returns its length.
fn format_dropped(buf: &mut [u8; 64], n: u64) -> usize {
    use core::fmt::Write;
    struct Cursor<'a>(&'a mut [u8], usize);
    impl Write for Cursor<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let end = (self.1 + s.len()).min(self.0.len());
            self.0[self.1..end].copy_from_slice(&s.as_bytes()[..end - self.1]);
            self.1 = end;
            Ok(())
        }
    }
    let mut cursor = Cursor(buf, 0);
    let _ = write!(cursor, "\n[console: {n} bytes dropped]\n");
    cursor.1
}

impl ConsoleRing {
    /// The console Xen set up for this domain (HVM params or start_info).
    fn open() -> Option<ConsoleRing> {
        let (addr, port) = super::startup().console()?;
        // SAFETY: the console page is a special page Xen keeps mapped for
        // the domain's life (PVH: in our physmap below 4 GiB; PV: in the
        // bootstrap area), as `Startup::console` checked.
        let page = unsafe { PhysPage::new(addr) };
        Some(ConsoleRing { page, port, dropped: AtomicU64::new(0), reported: AtomicU64::new(0) })
    }

    pub fn write(&self, bytes: &[u8]) {
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > self.reported.load(Ordering::Relaxed) && self.free() > 80 {
            // Say so once the consumer is back, so the gap is visible.
            self.reported.store(dropped, Ordering::Relaxed);
            let mut note = [0u8; 64];
            let len = format_dropped(&mut note, dropped);
            self.write(&note[..len]);
        }
        let mut prod = self.page.read_u32(layout::OUT_PROD);
        let mut yields = 0;
        for &b in bytes {
            // Free space from xenconsoled's consumer index (read fresh: it
            // moves as dom0 drains the ring).
            while prod.wrapping_sub(self.page.read_u32(layout::OUT_CONS)) >= layout::OUT_SIZE {
                if yields == FULL_YIELDS {
                    break;
                }
                self.publish(prod);
                yields += 1;
                let _ = hypercall::sched_yield();
            }
            if yields == FULL_YIELDS {
                self.dropped.fetch_add(1, Ordering::Relaxed);
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

    fn free(&self) -> u32 {
        let used = self.page.read_u32(layout::OUT_PROD).wrapping_sub(self.page.read_u32(layout::OUT_CONS));
        layout::OUT_SIZE.saturating_sub(used)
    }

    /// Waits (bounded) until xenconsoled has read everything, so output
    /// written just before shutdown is not lost.
    pub fn flush(&self) {
        for _ in 0..FULL_YIELDS {
            if self.page.read_u32(layout::OUT_CONS) == self.page.read_u32(layout::OUT_PROD) {
                return;
            }
            let _ = hypercall::sched_yield();
        }
    }
}
