//! Cohort as a Xen PV domain: what `start_info` gives (instead of the HVM
//! params and physmap hypercalls a PVH domain uses), read and checked
//! first thing after `pv_start64`, and the rest of RAM mapped (`arch::pv`).

use super::Startup;
use crate::arch;
use alloc::format;
use alloc::string::String;
use xen_abi::abi::pv::{leaf_pte, P2m, PvStartInfo, PAGE_SIZE, START_INFO_SIZE};
use xen_abi::hypercall;

struct Pv {
    info: PvStartInfo,
    /// End of the builder's bootstrap area (virtual = pseudo-physical).
    boot_end: u64,
}

static PV: spin::Once<Pv> = spin::Once::new();

/// What the PV boot found, for the boot information.
pub struct PvBoot {
    pub cmdline: &'static str,
    /// `[0, ram_end)` is RAM, mapped.
    pub ram_end: u64,
    pub nr_pages: u64,
    /// The image, the bootstrap area and the page tables made for RAM:
    /// never handed out as free frames.
    pub reserved: (u64, u64),
    pub tables_made: u64,
    pub entries_added: u64,
}

fn p2m(pv: &Pv) -> P2m<'static> {
    // SAFETY: `boot` checked that the list lies inside the bootstrap area,
    // mapped for the kernel's life; Xen's builder wrote it and nothing
    // writes it again (Cohort never changes its p2m).
    P2m::new(unsafe { core::slice::from_raw_parts(pv.info.mfn_list as *const u64, pv.info.nr_pages as usize) })
}

/// The virtual address of one of the builder's special pages (console,
/// xenstore), given by machine frame: they lie in the bootstrap area.
fn special_page(pv: &Pv, mfn: u64) -> Option<u64> {
    let va = p2m(pv).pfn_of(mfn)? * PAGE_SIZE;
    (va != 0 && va < pv.boot_end).then_some(va)
}

impl Startup for Pv {
    fn console(&self) -> Option<(u64, u32)> {
        let (mfn, port) = self.info.console()?;
        Some((special_page(self, mfn)?, port))
    }

    fn store(&self) -> Result<(u64, u32), &'static str> {
        let va = special_page(self, self.info.store_mfn).ok_or("start_info's xenstore page is not in the bootstrap area")?;
        Ok((va, self.info.store_evtchn))
    }

    fn map_shared_info(&self, page: u64) -> Result<(), &'static str> {
        // SAFETY: `page` is the kernel's page set aside for shared_info
        // (never used as memory); its old frame is simply no longer mapped.
        unsafe { hypercall::update_va_mapping(page, leaf_pte(self.info.shared_info / PAGE_SIZE, true)) }
            .map_err(|_| "update_va_mapping(shared_info) failed")
    }

    fn map_grant_table(&self, addrs: &[u64]) -> Result<(), &'static str> {
        let mut frames = [0u64; super::grants::MAX_FRAMES];
        let frames = frames.get_mut(..addrs.len()).ok_or("too many grant-table frames")?;
        hypercall::grant_setup_table(frames).map_err(|_| "GNTTABOP_setup_table failed")?;
        for (&addr, &mfn) in addrs.iter().zip(frames.iter()) {
            // SAFETY: `addr` is in the window above RAM (a table exists,
            // nothing is mapped there); Xen lets us map our own grant table.
            unsafe { hypercall::update_va_mapping(addr, leaf_pte(mfn, true)) }
                .map_err(|_| "update_va_mapping(grant-table frame) failed")?;
        }
        Ok(())
    }

    fn grant_frame(&self, addr: u64) -> Option<u64> {
        p2m(self).mfn(addr / PAGE_SIZE)
    }
}

/// From `pv_start64`: the hypercall page, `start_info` (at virtual
/// `start_info_va`, Xen's stack top at `entry_rsp`), the console ring as
/// the kernel's console, and all RAM mapped.
pub fn boot(start_info_va: u64, entry_rsp: u64) -> Result<PvBoot, String> {
    // SAFETY: the builder filled the page the image's HYPERCALL_PAGE note
    // names, in .text (mapped, executable).
    unsafe { hypercall::install_pv(arch::boot::hypercall_page_addr()) };
    super::super::mark_on_xen();
    // From here on, exceptions are reported (once the console is up,
    // readably) instead of crashing the domain silently.
    arch::pv_traps::init().map_err(|e| format!("set_trap_table: {e}"))?;
    let (image_start, image_end) = crate::memory::image_range();
    // start_info is a bootstrap element: after the image, below the stack.
    let start_info_end = start_info_va.checked_add(START_INFO_SIZE as u64);
    if !start_info_va.is_multiple_of(PAGE_SIZE) || start_info_va < image_end || start_info_end.is_none_or(|end| end > entry_rsp) {
        return Err(format!("start_info at {start_info_va:#x} is not in the bootstrap area"));
    }
    let mut raw = [0u8; START_INFO_SIZE];
    // SAFETY: checked above to lie in the bootstrap area (mapped, read
    // only by us); copied before anything else could reuse it.
    unsafe { core::ptr::copy_nonoverlapping(start_info_va as *const u8, raw.as_mut_ptr(), START_INFO_SIZE) };
    let info = PvStartInfo::parse(&raw).map_err(|e| format!("start_info: {e:?}"))?;
    let tables_end = info.pt_base.saturating_add(info.nr_pt_frames.saturating_mul(PAGE_SIZE));
    let boot_end = entry_rsp.div_ceil(PAGE_SIZE).saturating_mul(PAGE_SIZE).max(tables_end);
    let p2m_end = info.mfn_list.saturating_add(info.nr_pages.saturating_mul(8));
    if info.mfn_list < image_end || p2m_end > boot_end || info.pt_base < image_end || boot_end > info.ram_bytes() {
        return Err(format!(
            "start_info's layout is not the bootstrap area's: p2m {:#x}..{p2m_end:#x}, page tables {:#x}..{tables_end:#x}, stack top {entry_rsp:#x}",
            info.mfn_list, info.pt_base
        ));
    }
    let pv = PV.call_once(|| Pv { info, boot_end });
    super::console::register();
    // RAM is used up to where the grant window above it (`physmap::span`)
    // still ends inside what `map_ram` can map; the rest stays unused.
    let (_, window_len) = super::physmap::span(0);
    let ram_cap = (arch::pv::MAPPABLE - window_len) / (2 << 20) * (2 << 20);
    let ram_end = pv.info.ram_bytes().min(ram_cap);
    let (_, window_end) = super::physmap::span(ram_end);
    let mapped = arch::pv::map_ram(&p2m(pv), pv.info.pt_base, ram_end, boot_end, window_end).map_err(|e| format!("{e}"))?;
    Ok(PvBoot {
        cmdline: pv.info.cmdline(),
        ram_end: mapped.ram_end,
        nr_pages: pv.info.nr_pages,
        reserved: (image_start, mapped.tables_end),
        tables_made: mapped.tables_made,
        entries_added: mapped.entries_added,
    })
}

pub(super) fn startup() -> Option<&'static dyn Startup> {
    PV.get().map(|pv| pv as &dyn Startup)
}
