//! Xen PV memory. The domain builder maps the image and the bootstrap area
//! (p2m list, start_info, xenstore and console pages, its page tables, a
//! stack, and at least 512 KiB more) at virtual = pseudo-physical address
//! with 4 KiB pages, in page tables that are read-only to us. `map_ram`
//! extends that map over the rest of RAM the same way, so that the
//! kernel's "identity map" holds for all of it: new last-level tables are
//! filled while still ordinary pages, made read-only with
//! `update_va_mapping`, then hooked in with `mmu_update`, which Xen
//! validates. Tables are found through the p2m list, never the M2P.

use xen_abi::abi::ops::MmuUpdate;
use xen_abi::abi::pv::{leaf_pte, pte, pte_frame, table_pte, P2m, PAGE_SIZE};
use xen_abi::hypercall::{self, Errno};

const TABLE_SPAN: u64 = 2 << 20;
/// One level-2 table (the first GiB of virtual space) is what the builder
/// gives a small domain; RAM above it stays unmapped (see `Mapped`).
pub const MAPPABLE: u64 = 1 << 30;
const L2_SPAN: u64 = MAPPABLE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// A page-table entry that should be present is not, or names a frame
    /// outside the p2m list or the mapped area.
    BadTable(&'static str, u64),
    /// No mapped page left for a new page table.
    NoFrame(u64),
    Hypercall(&'static str, Errno),
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::BadTable(what, v) => write!(f, "PV page tables: unusable {what} ({v:#x})"),
            Error::NoFrame(at) => write!(f, "PV page tables: no mapped frame for a new page table at {at:#x}"),
            Error::Hypercall(what, e) => write!(f, "PV page tables: {what} failed: {e}"),
        }
    }
}

/// What `map_ram` left mapped and used.
#[derive(Debug, Clone, Copy)]
pub struct Mapped {
    /// `[0, ram_end)` is mapped at virtual = pseudo-physical.
    pub ram_end: u64,
    /// Frames `[boot_end, tables_end)` hold the page tables made here.
    pub tables_end: u64,
    pub tables_made: u64,
    pub entries_added: u64,
}

fn read_entry(table_va: u64, index: u64) -> u64 {
    debug_assert!(index < 512);
    // SAFETY: every table read lies in the mapped bootstrap area or is
    // one `map_ram` made and mapped (checked by `table_at`); 8-aligned.
    unsafe { core::ptr::read_volatile((table_va + index * 8) as *const u64) }
}

/// Where the table `entry` points at is mapped (virtual = pseudo-physical),
/// and its machine frame.
fn table_at(p2m: &P2m<'_>, entry: u64, mapped_below: u64, what: &'static str) -> Result<(u64, u64), Error> {
    let mfn = pte_frame(entry).ok_or(Error::BadTable(what, entry))?;
    let pfn = p2m.pfn_of(mfn).ok_or(Error::BadTable(what, mfn))?;
    let va = pfn * PAGE_SIZE;
    if va >= mapped_below {
        return Err(Error::BadTable(what, va));
    }
    Ok((va, mfn))
}

/// Maps every pseudo-physical page of `[0, ram_end)` (up to the first
/// GiB) that the builder left unmapped, read-write, and gives the rest of
/// `[0, tables_to)` empty last-level tables (where grants are mapped later:
/// Xen maps a grant at a virtual address only where a table exists).
/// `pt_base` is the builder's top-level table (start_info), `boot_end` the
/// end of the bootstrap area: new tables are taken from the frames after it.
pub fn map_ram(p2m: &P2m<'_>, pt_base: u64, ram_end: u64, boot_end: u64, tables_to: u64) -> Result<Mapped, Error> {
    let limit = ram_end.min(L2_SPAN).min(p2m.len() * PAGE_SIZE);
    let tables_to = tables_to.max(limit).min(L2_SPAN);
    let (l3, _) = table_at(p2m, read_entry(pt_base, 0), boot_end, "level-4 entry 0")?;
    let (l2, l2_mfn) = table_at(p2m, read_entry(l3, 0), boot_end, "level-3 entry 0")?;
    let mut mapped = Mapped { ram_end: limit, tables_end: boot_end, tables_made: 0, entries_added: 0 };
    // Pages below this are mapped read-write (the builder's area, then ours).
    let mut mapped_below = boot_end;
    let mut chunk = 0;
    while chunk < tables_to {
        let index = chunk / TABLE_SPAN;
        let entry = read_entry(l2, index);
        let first_pfn = chunk / PAGE_SIZE;
        let pages = (limit.saturating_sub(chunk) / PAGE_SIZE).min(512);
        if entry & pte::PRESENT != 0 {
            let (l1, l1_mfn) = table_at(p2m, entry, boot_end, "level-2 entry")?;
            mapped.entries_added += fill_holes(p2m, l1, l1_mfn, first_pfn, pages)?;
        } else {
            let table = mapped.tables_end;
            if table + PAGE_SIZE > mapped_below {
                return Err(Error::NoFrame(table));
            }
            let table_mfn = p2m.mfn(table / PAGE_SIZE).ok_or(Error::NoFrame(table))?;
            for j in 0..512 {
                let value = if j < pages { leaf_pte(mfn_of(p2m, first_pfn + j)?, true) } else { 0 };
                // SAFETY: `table` is a mapped, writable frame after the
                // bootstrap area that nothing else uses (tables_end only
                // grows, and the frame allocator reserves up to it).
                unsafe { core::ptr::write_volatile((table + j * 8) as *mut u64, value) };
            }
            // Xen accepts a page table only when no writable mapping of
            // it is left.
            // SAFETY: the frame stays mapped, read-only; nothing else
            // writes it.
            unsafe { hypercall::update_va_mapping(table, leaf_pte(table_mfn, false)) }
                .map_err(|e| Error::Hypercall("update_va_mapping (new table read-only)", e))?;
            let mut hook = [MmuUpdate { ptr: l2_mfn * PAGE_SIZE + index * 8, val: table_pte(table_mfn) }];
            // SAFETY: the level-2 entry was empty: nothing was mapped there.
            unsafe { hypercall::mmu_update(&mut hook) }.map_err(|e| Error::Hypercall("mmu_update (level-2 entry)", e))?;
            mapped.tables_end += PAGE_SIZE;
            mapped.tables_made += 1;
            mapped.entries_added += pages;
        }
        mapped_below = mapped_below.max(chunk + pages * PAGE_SIZE);
        chunk += TABLE_SPAN;
    }
    Ok(mapped)
}

fn mfn_of(p2m: &P2m<'_>, pfn: u64) -> Result<u64, Error> {
    p2m.mfn(pfn).ok_or(Error::BadTable("pfn outside the p2m list", pfn))
}

/// Maps the absent entries of the builder's table `l1` (pages from
/// `first_pfn`, `pages` of them); present ones are left as they are (the
/// page tables' own read-only entries among them).
fn fill_holes(p2m: &P2m<'_>, l1: u64, l1_mfn: u64, first_pfn: u64, pages: u64) -> Result<u64, Error> {
    let mut batch = [MmuUpdate::default(); 64];
    let mut n = 0;
    let mut added = 0;
    for j in 0..pages {
        if read_entry(l1, j) & pte::PRESENT != 0 {
            continue;
        }
        batch[n] = MmuUpdate { ptr: l1_mfn * PAGE_SIZE + j * 8, val: leaf_pte(mfn_of(p2m, first_pfn + j)?, true) };
        n += 1;
        added += 1;
        if n == batch.len() {
            // SAFETY: each entry was empty; it now maps a RAM page of ours
            // that nothing uses yet.
            unsafe { hypercall::mmu_update(&mut batch) }.map_err(|e| Error::Hypercall("mmu_update (level-1 entries)", e))?;
            n = 0;
        }
    }
    if n > 0 {
        // SAFETY: as above.
        unsafe { hypercall::mmu_update(&mut batch[..n]) }.map_err(|e| Error::Hypercall("mmu_update (level-1 entries)", e))?;
    }
    Ok(added)
}
