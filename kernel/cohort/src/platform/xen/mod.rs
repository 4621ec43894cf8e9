//! Cohort as a Xen PVH or PV domain: the hypercall page, shared_info,
//! event channels, pvclock and the Xen timer, the PV console, grant tables
//! and xenstore. Where the special pages come from differs (HVM params and
//! the physmap for PVH, `start_info` for PV: `Startup`); the rest is the
//! same. Hypercalls themselves live in the `xen-abi` crate.

pub mod console;
pub mod control;
pub mod events;
pub mod grants;
pub mod net;
pub mod page;
pub mod peer;
pub mod physmap;
pub mod pv;
pub mod residency;
pub mod store;
pub mod time;
pub mod watches;

use super::ExitStatus;
use ::xen_abi::abi::ops::{hvmop, schedop, xenmem, E820_ENTRY_SIZE};
use ::xen_abi::hypercall;
use cohort_boot::cmdline::{CHAN_MTU_MAX, CHAN_PAGES_MAX};
use cohort_boot::memmap::{MemoryMap, Region, RegionKind, MAX_REGIONS};

// The command line checks chan.pages and chan.mtu against limits of its
// own (cohort-boot depends on no driver): they must be the channel's (a
// frame is the MTU and a 14-byte Ethernet header).
const _: () = assert!(CHAN_PAGES_MAX == channel::layout::MAX_RING_PAGES);
const _: () = assert!(CHAN_MTU_MAX as usize + 14 == channel::ring::MAX_CHANNEL_FRAME);

#[repr(C, align(4096))]
struct PageFrame([u8; 4096]);

// Given to Xen at boot and never touched by Rust code again.
static mut SHARED_INFO_PAGE: PageFrame = PageFrame([0; 4096]);

pub(super) fn events_shared_info() -> u64 {
    (&raw const SHARED_INFO_PAGE) as u64
}

/// Where this domain's special pages come from: the HVM params and the
/// physmap (PVH) or `start_info` and the guest's own page tables (PV).
pub trait Startup: Sync {
    /// The console ring (virtual address of its page, event channel).
    fn console(&self) -> Option<(u64, u32)>;
    /// The xenstore ring (virtual address of its page, event channel).
    fn store(&self) -> Result<(u64, u32), &'static str>;
    /// Makes the kernel's page at `page` show shared_info.
    fn map_shared_info(&self, page: u64) -> Result<(), &'static str>;
    /// Maps grant-table frame i at `addrs[i]` (in the window above RAM).
    fn map_grant_table(&self, addrs: &[u64]) -> Result<(), &'static str>;
    /// The frame number a grant entry names for our page at `addr`: its
    /// guest frame (PVH), its machine frame (PV).
    fn grant_frame(&self, addr: u64) -> Option<u64>;
}

/// PVH: HVM params and XENMEM_add_to_physmap.
struct Hvm;

impl Startup for Hvm {
    fn console(&self) -> Option<(u64, u32)> {
        let pfn = hypercall::hvm_get_param(hvmop::PARAM_CONSOLE_PFN).ok().filter(|&p| p != 0)?;
        let port = hypercall::hvm_get_param(hvmop::PARAM_CONSOLE_EVTCHN).ok()? as u32;
        let addr = pfn.checked_mul(4096).filter(|&a| a < crate::arch::paging::IDENTITY_MAP_END)?;
        Some((addr, port))
    }

    fn store(&self) -> Result<(u64, u32), &'static str> {
        let pfn = hypercall::hvm_get_param(hvmop::PARAM_STORE_PFN).map_err(|_| "no HVM_PARAM_STORE_PFN")?;
        let port = hypercall::hvm_get_param(hvmop::PARAM_STORE_EVTCHN).map_err(|_| "no HVM_PARAM_STORE_EVTCHN")?;
        let addr = pfn.checked_mul(4096).filter(|&a| a != 0 && a < crate::arch::paging::IDENTITY_MAP_END);
        let addr = addr.ok_or("xenstore page outside the identity map")?;
        let port = u32::try_from(port).map_err(|_| "bad xenstore event channel")?;
        Ok((addr, port))
    }

    fn map_shared_info(&self, page: u64) -> Result<(), &'static str> {
        // SAFETY: the page is ours (kernel .bss), page-aligned and never
        // used as memory again: Xen replaces it with shared_info.
        unsafe { hypercall::add_to_physmap(xenmem::MAPSPACE_SHARED_INFO, 0, page / 4096) }
            .map_err(|_| "XENMEM_add_to_physmap(shared_info) failed")
    }

    fn map_grant_table(&self, addrs: &[u64]) -> Result<(), &'static str> {
        for (i, &addr) in addrs.iter().enumerate() {
            // SAFETY: `addr` is in the window above RAM: nothing of ours
            // lives there, so Xen may put grant-table frame i at it.
            unsafe { hypercall::add_to_physmap(xenmem::MAPSPACE_GRANT_TABLE, i as u64, addr / 4096) }
                .map_err(|_| "XENMEM_add_to_physmap(grant_table) failed")?;
        }
        Ok(())
    }

    fn grant_frame(&self, addr: u64) -> Option<u64> {
        Some(addr / 4096)
    }
}

/// The domain's `Startup`: PV's once `pv::boot` has read start_info.
pub fn startup() -> &'static dyn Startup {
    pv::startup().unwrap_or(&Hvm)
}

/// Finds Xen by CPUID and installs the hypercall page (PVH: a PV guest
/// has it from the domain builder, `pv::boot`).
pub fn detect() -> bool {
    let base = ::xen_abi::cpuid::find_base(|leaf| {
        let r = core::arch::x86_64::__cpuid(leaf);
        [r.eax, r.ebx, r.ecx, r.edx]
    });
    let Some(base) = base else { return false };
    // SAFETY: the page is 4 KiB aligned, identity mapped, executable (the
    // boot map has no NX) and used for nothing else.
    unsafe { hypercall::install(base, crate::arch::boot::hypercall_page_addr()) };
    true
}

/// The E820 map from `XENMEM_memory_map` (Xen gives PVH guests
/// `hvm_start_info` version 0, which has none).
pub fn memory_map() -> Result<MemoryMap, hypercall::Errno> {
    let mut buf = [0u8; MAX_REGIONS * E820_ENTRY_SIZE];
    let count = hypercall::memory_map(&mut buf)?;
    let mut map = MemoryMap::default();
    for entry in buf.chunks_exact(E820_ENTRY_SIZE).take(count) {
        let u64_at = |at: usize| u64::from_le_bytes(entry[at..at + 8].try_into().unwrap_or([0; 8]));
        let kind = u32::from_le_bytes(entry[16..20].try_into().unwrap_or([0; 4]));
        map.push(Region { base: u64_at(0), len: u64_at(8), kind: RegionKind::from_raw(kind) });
    }
    Ok(map)
}

pub struct Version {
    pub major: u16,
    pub minor: u16,
    pub extra: [u8; 16],
}

impl core::fmt::Display for Version {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let len = self.extra.iter().position(|&b| b == 0).unwrap_or(self.extra.len());
        let extra = core::str::from_utf8(&self.extra[..len]).unwrap_or("?");
        write!(f, "{}.{}{}", self.major, self.minor, extra)
    }
}

pub fn version() -> Result<Version, hypercall::Errno> {
    let (major, minor) = hypercall::xen_version()?;
    Ok(Version { major, minor, extra: hypercall::xen_extraversion()? })
}

/// Maps shared_info for the event channels (polled: no upcall is
/// registered, see `events`) and pvclock (`time`).
pub fn init_events() -> Result<(), &'static str> {
    let shared_info = events_shared_info();
    startup().map_shared_info(shared_info)?;
    events::init(shared_info);
    Ok(())
}

/// Blocks in Xen until an event arrives on an open port (or the next
/// timer tick).
pub fn block() {
    events::block_until(u64::MAX);
}

pub fn shutdown(status: ExitStatus) -> ! {
    crate::console::flush();
    let reason = match status {
        ExitStatus::Success => schedop::SHUTDOWN_POWEROFF,
        ExitStatus::Failure => schedop::SHUTDOWN_CRASH,
    };
    let err = hypercall::sched_shutdown(reason);
    crate::console::print_emergency(format_args!("cohort: SCHEDOP_shutdown refused: {err}\n"));
    crate::arch::cpu::halt_forever()
}

pub type Xenstore = xen_proto::xenstore::Client<store::StoreRing>;

static XENSTORE: spin::Once<spin::Mutex<Xenstore>> = spin::Once::new();

/// Runs `f` with the xenstore client (thread context only: it blocks).
pub fn with_xenstore<T>(f: impl FnOnce(&mut Xenstore) -> T) -> Option<T> {
    XENSTORE.get().map(|client| f(&mut client.lock()))
}

/// After interrupts are on: the PV console, grant tables and xenstore.
pub fn init_services(map: &MemoryMap) -> Result<(), &'static str> {
    let has_console = console::is_registered();
    let window = physmap::Window::new(map).map_err(|_| "no room above RAM for the grant window")?;
    let refs = grants::init(window)?;
    let ring = store::StoreRing::open()?;
    let client = XENSTORE.call_once(|| spin::Mutex::new(Xenstore::new(ring)));
    let version = version().map_err(|_| "XENVER_version failed")?;
    let mut client = client.lock();
    let domid = client.read_string("domid").map_err(|_| "cannot read `domid` from xenstore")?;
    let name = client.read_string("name").unwrap_or_else(|_| "?".into());
    log::info!("Xen {version}; domid {domid}, name `{name}` (from xenstore)");
    log::info!(
        "Xen services: {refs} grant refs, events polled (no upcall), console: {}",
        if has_console { "PV console ring" } else { "port 0xe9 only" }
    );
    Ok(())
}
