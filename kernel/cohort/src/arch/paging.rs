//! Changes to the boot map: where a single page must be unmapped (guard
//! pages, the null page), natively (PVH) the boot stub's 2 MiB page is
//! split into a 4 KiB page table; under Xen PV, whose page tables only
//! Xen writes, the entry is cleared by hypercall (`guest`).

use x86_64::registers::control::Cr3;

const PRESENT: u64 = 1 << 0;
const HUGE: u64 = 1 << 7;
/// Bit 12 of a 2 MiB entry is PAT, not address.
const HUGE_PAT: u64 = 1 << 12;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
/// The boot stub maps 4 GiB; page tables are reached through that map.
pub const IDENTITY_MAP_END: u64 = 4 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    NotMapped(u64),
    OutsideIdentityMap(u64),
    NoFrameForPageTable,
}

/// Pointer to entry `index` of the page table at physical `table`.
fn entry(table: u64, index: u64) -> *mut u64 {
    debug_assert!(table < IDENTITY_MAP_END && index < 512);
    (table + index * 8) as *mut u64
}

fn index(addr: u64, level_shift: u32) -> u64 {
    (addr >> level_shift) & 0x1ff
}

/// Unmaps the 4 KiB page containing `addr`, the way the guest type does
/// (`guest::Privileged::unmap_page`). Mapping the page again is not
/// supported: guards stay guards.
pub fn unmap(addr: u64, mut alloc_frame: impl FnMut() -> Option<u64>) -> Result<(), Error> {
    super::guest::ops().unmap_page(addr, &mut alloc_frame)
}

/// Ring 0: unmaps the 4 KiB page containing `addr`, splitting its 2 MiB
/// page first with a page table from `alloc_frame` (a zeroed or not,
/// identity-mapped frame).
pub(super) fn unmap_native(addr: u64, alloc_frame: &mut dyn FnMut() -> Option<u64>) -> Result<(), Error> {
    if addr >= IDENTITY_MAP_END {
        return Err(Error::OutsideIdentityMap(addr));
    }
    let pml4 = Cr3::read().0.start_address().as_u64();
    // SAFETY: every table the walk visits was made by the boot stub or by
    // this function, lies below 4 GiB and is therefore identity mapped; each
    // index is < 512. We run single-threaded with no other walker.
    unsafe {
        let pdpt = next_table(*entry(pml4, index(addr, 39)), addr)?;
        let pd = next_table(*entry(pdpt, index(addr, 30)), addr)?;
        let pde = entry(pd, index(addr, 21));
        if *pde & PRESENT == 0 {
            return Err(Error::NotMapped(addr));
        }
        if *pde & HUGE != 0 {
            let table = alloc_frame().ok_or(Error::NoFrameForPageTable)?;
            if table >= IDENTITY_MAP_END {
                return Err(Error::OutsideIdentityMap(table));
            }
            let base = *pde & ADDR_MASK & !(HUGE_PAT | 0x1f_f000);
            let flags = *pde & 0x1f; // present, writable, user, pwt, pcd
            for i in 0..512 {
                *entry(table, i) = (base + i * 4096) | flags;
            }
            *pde = table | (flags & 0x7);
        }
        let pt = *pde & ADDR_MASK;
        *entry(pt, index(addr, 12)) = 0;
    }
    // The 2 MiB translation may be cached for the whole range: flush all.
    let (frame, flags) = Cr3::read();
    // SAFETY: reloading the same CR3 only flushes the TLB.
    unsafe { Cr3::write(frame, flags) };
    Ok(())
}

/// # Safety
/// `entry_value` is an entry of a live page table.
unsafe fn next_table(entry_value: u64, addr: u64) -> Result<u64, Error> {
    if entry_value & PRESENT == 0 || entry_value & HUGE != 0 {
        return Err(Error::NotMapped(addr));
    }
    let table = entry_value & ADDR_MASK;
    if table >= IDENTITY_MAP_END {
        return Err(Error::OutsideIdentityMap(table));
    }
    Ok(table)
}
