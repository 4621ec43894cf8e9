//! Copies what the loader left in `hvm_start_info` (and the command line and
//! memory map it points at) into kernel memory, before low memory is reused;
//! or, for a Xen PV guest, what `start_info` said (read by the platform).

use crate::arch::paging::IDENTITY_MAP_END;
use cohort_boot::memmap::{MemoryMap, Region, RegionKind, MAX_REGIONS};
use core::fmt;
use xen_abi::abi::start_info::{self, MemmapEntry, StartInfo, MEMMAP_ENTRY_SIZE};

pub const CMDLINE_MAX: usize = 2048;

pub struct BootInfo {
    /// PVH's `hvm_start_info`; None for a PV guest.
    pub start_info: Option<StartInfo>,
    pub memmap: MemoryMap,
    /// Memory beyond the image the frame allocator must not hand out (PV:
    /// the bootstrap area and the page tables made for RAM).
    pub reserved: Option<(u64, u64)>,
    cmdline: [u8; CMDLINE_MAX],
    cmdline_len: usize,
}

#[derive(Debug)]
pub enum Error {
    StartInfo(start_info::Error),
    /// A pointer in start_info leads outside the identity map (or is null).
    BadAddress(u64),
    CmdlineTooLong,
    CmdlineNotUtf8,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::StartInfo(e) => write!(f, "hvm_start_info is invalid: {e:?}"),
            Error::BadAddress(a) => write!(f, "hvm_start_info points at unusable address {a:#x}"),
            Error::CmdlineTooLong => write!(f, "command line longer than {} bytes", CMDLINE_MAX - 1),
            Error::CmdlineNotUtf8 => write!(f, "command line is not UTF-8"),
        }
    }
}

/// Copies `len` bytes of physical memory at `paddr` into `buf`.
fn read_phys(paddr: u64, buf: &mut [u8]) -> Result<(), Error> {
    let end = paddr.checked_add(buf.len() as u64).ok_or(Error::BadAddress(paddr))?;
    if paddr == 0 || end > IDENTITY_MAP_END {
        return Err(Error::BadAddress(paddr));
    }
    // SAFETY: [paddr, end) is below 4 GiB, hence identity mapped, non-null,
    // and is loader-provided RAM that nothing writes while we copy.
    unsafe { core::ptr::copy_nonoverlapping(paddr as *const u8, buf.as_mut_ptr(), buf.len()) };
    Ok(())
}

impl BootInfo {
    pub fn copy_from(start_info_paddr: u64) -> Result<BootInfo, Error> {
        let mut raw = [0u8; StartInfo::READ_SIZE];
        read_phys(start_info_paddr, &mut raw)?;
        let start_info = StartInfo::parse(&raw).map_err(Error::StartInfo)?;

        let mut info = BootInfo {
            start_info: Some(start_info),
            memmap: MemoryMap::default(),
            reserved: None,
            cmdline: [0; CMDLINE_MAX],
            cmdline_len: 0,
        };
        if start_info.cmdline_paddr != 0 {
            info.copy_cmdline(start_info.cmdline_paddr)?;
        }
        // Xen gives PVH guests version 0 without a map: the caller asks Xen.
        let Some(location) = start_info.memmap else { return Ok(info) };
        // More entries than we keep are counted as dropped by MemoryMap.
        for i in 0..u64::from(location.entries).min(MAX_REGIONS as u64 + 1) {
            let mut entry = [0u8; MEMMAP_ENTRY_SIZE];
            read_phys(location.paddr + i * MEMMAP_ENTRY_SIZE as u64, &mut entry)?;
            let e = MemmapEntry::parse(&entry).map_err(Error::StartInfo)?;
            info.memmap.push(Region { base: e.addr, len: e.size, kind: RegionKind::from_raw(e.kind) });
        }
        Ok(info)
    }

    /// A PV guest's: its command line (checked UTF-8 by the parser), RAM
    /// `[0, ram_end)` (PV pseudo-physical memory has no holes) and the
    /// range to keep.
    pub fn from_pv(cmdline: &str, ram_end: u64, reserved: (u64, u64)) -> Result<BootInfo, Error> {
        if cmdline.len() >= CMDLINE_MAX {
            return Err(Error::CmdlineTooLong);
        }
        let mut info = BootInfo {
            start_info: None,
            memmap: MemoryMap::default(),
            reserved: Some(reserved),
            cmdline: [0; CMDLINE_MAX],
            cmdline_len: cmdline.len(),
        };
        info.cmdline[..cmdline.len()].copy_from_slice(cmdline.as_bytes());
        info.memmap.push(Region { base: 0, len: ram_end, kind: RegionKind::Ram });
        Ok(info)
    }

    fn copy_cmdline(&mut self, paddr: u64) -> Result<(), Error> {
        for i in 0..CMDLINE_MAX {
            let mut byte = [0u8];
            read_phys(paddr + i as u64, &mut byte)?;
            if byte[0] == 0 {
                self.cmdline_len = i;
                return core::str::from_utf8(&self.cmdline[..i]).map(drop).map_err(|_| Error::CmdlineNotUtf8);
            }
            self.cmdline[i] = byte[0];
        }
        Err(Error::CmdlineTooLong)
    }

    pub fn cmdline(&self) -> &str {
        // Checked in copy_cmdline; an empty line if that was skipped.
        core::str::from_utf8(&self.cmdline[..self.cmdline_len]).unwrap_or("")
    }
}
