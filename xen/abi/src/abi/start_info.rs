//! `struct hvm_start_info` and `struct hvm_memmap_table_entry` from
//! `public/arch-x86/hvm/start_info.h`: what a PVH guest finds in `%ebx`.

use super::{u32_at, u64_at};

pub const XEN_HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;

/// Size of the version-0 structure (no memory map fields).
pub const START_INFO_V0_SIZE: usize = 40;
/// Size of the version-1 structure.
pub const START_INFO_V1_SIZE: usize = 56;
pub const MEMMAP_ENTRY_SIZE: usize = 24;

mod field {
    use core::ops::Range;
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 4;
    pub const FLAGS: usize = 8;
    pub const NR_MODULES: usize = 12;
    pub const MODLIST_PADDR: usize = 16;
    pub const CMDLINE_PADDR: usize = 24;
    pub const RSDP_PADDR: usize = 32;
    pub const MEMMAP_PADDR: usize = 40;
    pub const MEMMAP_ENTRIES: usize = 48;
    pub const ENTRY_ADDR: Range<usize> = 0..8;
    pub const ENTRY_SIZE: Range<usize> = 8..16;
    pub const ENTRY_TYPE: usize = 16;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Fewer bytes than the structure (or the entry) needs.
    Truncated,
    BadMagic(u32),
}

/// The fields of `hvm_start_info`, copied out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartInfo {
    pub version: u32,
    pub flags: u32,
    pub nr_modules: u32,
    pub modlist_paddr: u64,
    /// 0 when there is no command line.
    pub cmdline_paddr: u64,
    pub rsdp_paddr: u64,
    /// Present from version 1; Xen 4.17 gives version 0 to PVH guests.
    pub memmap: Option<MemmapLocation>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemmapLocation {
    pub paddr: u64,
    pub entries: u32,
}

impl StartInfo {
    /// Bytes to read at `%ebx` before `parse` can tell the version.
    pub const READ_SIZE: usize = START_INFO_V1_SIZE;

    /// Parses the structure. `bytes` may be `READ_SIZE` long even for a
    /// version-0 structure: the extra bytes are ignored then.
    pub fn parse(bytes: &[u8]) -> Result<StartInfo, Error> {
        if bytes.len() < START_INFO_V0_SIZE {
            return Err(Error::Truncated);
        }
        let magic = u32_at(bytes, field::MAGIC);
        if magic != XEN_HVM_START_MAGIC_VALUE {
            return Err(Error::BadMagic(magic));
        }
        let version = u32_at(bytes, field::VERSION);
        let memmap = if version >= 1 {
            if bytes.len() < START_INFO_V1_SIZE {
                return Err(Error::Truncated);
            }
            let entries = u32_at(bytes, field::MEMMAP_ENTRIES);
            let paddr = u64_at(bytes, field::MEMMAP_PADDR);
            (entries != 0 && paddr != 0).then_some(MemmapLocation { paddr, entries })
        } else {
            None
        };
        Ok(StartInfo {
            version,
            flags: u32_at(bytes, field::FLAGS),
            nr_modules: u32_at(bytes, field::NR_MODULES),
            modlist_paddr: u64_at(bytes, field::MODLIST_PADDR),
            cmdline_paddr: u64_at(bytes, field::CMDLINE_PADDR),
            rsdp_paddr: u64_at(bytes, field::RSDP_PADDR),
            memmap,
        })
    }
}

/// One `hvm_memmap_table_entry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemmapEntry {
    pub addr: u64,
    pub size: u64,
    /// `XEN_HVM_MEMMAP_TYPE_*`, E820 numbering.
    pub kind: u32,
}

impl MemmapEntry {
    pub fn parse(bytes: &[u8]) -> Result<MemmapEntry, Error> {
        if bytes.len() < MEMMAP_ENTRY_SIZE {
            return Err(Error::Truncated);
        }
        Ok(MemmapEntry {
            addr: u64_at(bytes, field::ENTRY_ADDR.start),
            size: u64_at(bytes, field::ENTRY_SIZE.start),
            kind: u32_at(bytes, field::ENTRY_TYPE),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Bytes laid out by hand from start_info.h, as QEMU's PVH option ROM
    // fills them: version 1, cmdline at 0x7000, rsdp 0xf5a60, 3 map entries.
    fn v1_bytes() -> [u8; 56] {
        let mut b = [0u8; 56];
        b[0..4].copy_from_slice(&[0x78, 0xc5, 0x6e, 0x33]);
        b[4] = 1;
        b[24..32].copy_from_slice(&0x7000u64.to_le_bytes());
        b[32..40].copy_from_slice(&0xf5a60u64.to_le_bytes());
        b[40..48].copy_from_slice(&0x6000u64.to_le_bytes());
        b[48] = 3;
        b
    }

    #[test]
    fn parses_version_1() {
        let info = StartInfo::parse(&v1_bytes()).unwrap();
        assert_eq!(info.version, 1);
        assert_eq!(info.cmdline_paddr, 0x7000);
        assert_eq!(info.rsdp_paddr, 0xf5a60);
        assert_eq!(info.memmap, Some(MemmapLocation { paddr: 0x6000, entries: 3 }));
    }

    #[test]
    fn version_0_has_no_memmap_even_if_bytes_follow() {
        let mut b = v1_bytes();
        b[4] = 0;
        let info = StartInfo::parse(&b).unwrap();
        assert_eq!(info.memmap, None);
        assert_eq!(StartInfo::parse(&b[..START_INFO_V0_SIZE]).unwrap().version, 0);
    }

    #[test]
    fn rejects_bad_magic_and_short_input() {
        let mut b = v1_bytes();
        assert_eq!(StartInfo::parse(&b[..39]), Err(Error::Truncated));
        assert_eq!(StartInfo::parse(&b[..48]), Err(Error::Truncated));
        b[0] = 0;
        assert_eq!(StartInfo::parse(&b), Err(Error::BadMagic(0x336e_c500)));
    }

    #[test]
    fn parses_memmap_entry() {
        let mut e = [0u8; 24];
        e[0..8].copy_from_slice(&0x100000u64.to_le_bytes());
        e[8..16].copy_from_slice(&0x1f00000u64.to_le_bytes());
        e[16] = 1;
        let entry = MemmapEntry::parse(&e).unwrap();
        assert_eq!(entry, MemmapEntry { addr: 0x100000, size: 0x1f00000, kind: 1 });
        assert_eq!(MemmapEntry::parse(&e[..23]), Err(Error::Truncated));
    }
}
