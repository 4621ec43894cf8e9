//! What a 64-bit PV guest finds at entry: `struct start_info` from
//! `public/xen.h` (its address in `%rsi`), the p2m list it points at, and
//! the page-table entry bits PV guests write through `mmu_update` and
//! `update_va_mapping` (`public/arch-x86/xen-x86_64.h`, `public/xen.h`).

use super::{u32_at, u64_at};

/// `start_info` on x86_64, up to and including `nr_p2m_frames`.
pub const START_INFO_SIZE: usize = 1168;
/// `MAX_GUEST_CMDLINE`.
pub const CMDLINE_SIZE: usize = 1024;
pub const PAGE_SIZE: u64 = 4096;

mod field {
    pub const MAGIC: usize = 0;
    pub const NR_PAGES: usize = 32;
    pub const SHARED_INFO: usize = 40;
    pub const FLAGS: usize = 48;
    pub const STORE_MFN: usize = 56;
    pub const STORE_EVTCHN: usize = 64;
    pub const CONSOLE_MFN: usize = 72;
    pub const CONSOLE_EVTCHN: usize = 80;
    pub const PT_BASE: usize = 88;
    pub const NR_PT_FRAMES: usize = 96;
    pub const MFN_LIST: usize = 104;
    pub const CMD_LINE: usize = 128;
}

/// `SIF_INITDOMAIN`: dom0, whose console fields mean something else.
pub const SIF_INITDOMAIN: u32 = 1 << 1;

/// Page-table entry bits (x86-64 PTEs; Xen adds `_PAGE_USER` itself for
/// 64-bit PV kernels).
pub mod pte {
    pub const PRESENT: u64 = 1 << 0;
    pub const RW: u64 = 1 << 1;
    pub const ACCESSED: u64 = 1 << 5;
    pub const DIRTY: u64 = 1 << 6;
    pub const HUGE: u64 = 1 << 7;
    pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
}

/// `mmu_update` request types (the low two bits of `ptr`).
pub const MMU_NORMAL_PT_UPDATE: u64 = 0;
/// `update_va_mapping` flags.
pub const UVMF_INVLPG: u64 = 2;
/// The flat ring-3 code selector 64-bit PV kernels run on.
pub const FLAT_KERNEL_CS64: u16 = 0xe033;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    Truncated,
    /// The magic is not `xen-3.0-x86_64`.
    BadMagic,
    /// dom0's start_info: Cohort runs as a domU only.
    InitialDomain,
    /// No memory, or more than fits a 64-bit address.
    BadNrPages(u64),
    /// A page number or address that cannot be what it names (0, or
    /// not page-aligned where it must be).
    BadField(&'static str, u64),
    CmdlineNotTerminated,
    CmdlineNotUtf8,
}

/// The fields of a PV guest's `start_info` Cohort uses, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PvStartInfo {
    pub nr_pages: u64,
    /// Machine address of shared_info.
    pub shared_info: u64,
    pub flags: u32,
    pub store_mfn: u64,
    pub store_evtchn: u32,
    pub console_mfn: u64,
    pub console_evtchn: u32,
    /// Virtual address of the bootstrap page tables' top level.
    pub pt_base: u64,
    pub nr_pt_frames: u64,
    /// Virtual address of the p2m list (`nr_pages` machine frame numbers).
    pub mfn_list: u64,
    cmdline: [u8; CMDLINE_SIZE],
    cmdline_len: usize,
}

fn page_aligned(name: &'static str, v: u64) -> Result<u64, Error> {
    if v == 0 || !v.is_multiple_of(PAGE_SIZE) {
        return Err(Error::BadField(name, v));
    }
    Ok(v)
}

fn nonzero(name: &'static str, v: u64) -> Result<u64, Error> {
    if v == 0 {
        return Err(Error::BadField(name, v));
    }
    Ok(v)
}

impl PvStartInfo {
    pub fn parse(bytes: &[u8]) -> Result<PvStartInfo, Error> {
        if bytes.len() < START_INFO_SIZE {
            return Err(Error::Truncated);
        }
        // "xen-3.0-x86_64", NUL-padded: "xen-<version>-<platform>".
        let magic = &bytes[field::MAGIC..field::MAGIC + 32];
        if !magic.starts_with(b"xen-") || !magic.windows(7).any(|w| w == b"-x86_64") {
            return Err(Error::BadMagic);
        }
        let flags = u32_at(bytes, field::FLAGS);
        if flags & SIF_INITDOMAIN != 0 {
            return Err(Error::InitialDomain);
        }
        let nr_pages = u64_at(bytes, field::NR_PAGES);
        if nr_pages == 0 || nr_pages.checked_mul(PAGE_SIZE).is_none() {
            return Err(Error::BadNrPages(nr_pages));
        }
        let raw = &bytes[field::CMD_LINE..field::CMD_LINE + CMDLINE_SIZE];
        let cmdline_len = raw.iter().position(|&b| b == 0).ok_or(Error::CmdlineNotTerminated)?;
        core::str::from_utf8(&raw[..cmdline_len]).map_err(|_| Error::CmdlineNotUtf8)?;
        let mut cmdline = [0; CMDLINE_SIZE];
        cmdline[..cmdline_len].copy_from_slice(&raw[..cmdline_len]);
        Ok(PvStartInfo {
            nr_pages,
            shared_info: page_aligned("shared_info", u64_at(bytes, field::SHARED_INFO))?,
            flags,
            store_mfn: nonzero("store_mfn", u64_at(bytes, field::STORE_MFN))?,
            store_evtchn: u32_at(bytes, field::STORE_EVTCHN),
            console_mfn: u64_at(bytes, field::CONSOLE_MFN),
            console_evtchn: u32_at(bytes, field::CONSOLE_EVTCHN),
            pt_base: page_aligned("pt_base", u64_at(bytes, field::PT_BASE))?,
            nr_pt_frames: nonzero("nr_pt_frames", u64_at(bytes, field::NR_PT_FRAMES))?,
            mfn_list: page_aligned("mfn_list", u64_at(bytes, field::MFN_LIST))?,
            cmdline,
            cmdline_len,
        })
    }

    pub fn cmdline(&self) -> &str {
        // Checked in parse.
        core::str::from_utf8(&self.cmdline[..self.cmdline_len]).unwrap_or("")
    }

    /// The console ring, if the toolstack gave the domain one.
    pub fn console(&self) -> Option<(u64, u32)> {
        (self.console_mfn != 0).then_some((self.console_mfn, self.console_evtchn))
    }

    /// Bytes of pseudo-physical memory: `[0, ram_bytes())` is all RAM.
    pub fn ram_bytes(&self) -> u64 {
        self.nr_pages * PAGE_SIZE
    }
}

/// The largest machine frame a page-table entry can name.
pub const MAX_MFN: u64 = pte::ADDR_MASK / PAGE_SIZE;

/// The p2m list: machine frame of each pseudo-physical frame.
#[derive(Clone, Copy, Debug)]
pub struct P2m<'a> {
    mfns: &'a [u64],
}

impl<'a> P2m<'a> {
    pub fn new(mfns: &'a [u64]) -> P2m<'a> {
        P2m { mfns }
    }

    pub fn len(&self) -> u64 {
        self.mfns.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.mfns.is_empty()
    }

    /// The machine frame of `pfn`; `None` outside the list, and for an
    /// entry no page-table entry can name (Xen's ~0 for "no frame", say).
    pub fn mfn(&self, pfn: u64) -> Option<u64> {
        usize::try_from(pfn).ok().and_then(|i| self.mfns.get(i)).copied().filter(|&m| m <= MAX_MFN)
    }

    /// The pseudo-physical frame that holds machine frame `mfn`: a search
    /// of the list (no use of the M2P table).
    pub fn pfn_of(&self, mfn: u64) -> Option<u64> {
        (mfn <= MAX_MFN).then(|| self.mfns.iter().position(|&m| m == mfn)).flatten().map(|i| i as u64)
    }

    /// Machine address of pseudo-physical address `paddr`.
    pub fn maddr(&self, paddr: u64) -> Option<u64> {
        self.mfn(paddr / PAGE_SIZE).map(|mfn| mfn * PAGE_SIZE + paddr % PAGE_SIZE)
    }
}

/// The entry mapping machine frame `mfn` (writable or not) in a PV page
/// table, as `mmu_update`/`update_va_mapping` take it; `mfn` at most
/// `MAX_MFN` (what `P2m` gives).
pub fn leaf_pte(mfn: u64, writable: bool) -> u64 {
    let rw = if writable { pte::RW | pte::DIRTY } else { 0 };
    mfn.wrapping_mul(PAGE_SIZE) & pte::ADDR_MASK | pte::PRESENT | pte::ACCESSED | rw
}

/// The entry pointing at a lower-level table in machine frame `mfn`.
pub fn table_pte(mfn: u64) -> u64 {
    mfn.wrapping_mul(PAGE_SIZE) & pte::ADDR_MASK | pte::PRESENT | pte::RW | pte::ACCESSED
}

/// The machine frame an entry points at, if present (huge pages are not
/// something the PV domain builder makes, and are refused).
pub fn pte_frame(entry: u64) -> Option<u64> {
    (entry & pte::PRESENT != 0 && entry & pte::HUGE == 0).then_some((entry & pte::ADDR_MASK) / PAGE_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Laid out by hand from xen.h's struct start_info (x86_64 offsets), as
    // libxenguest fills it for a 32 MiB domU.
    fn bytes() -> [u8; START_INFO_SIZE] {
        let mut b = [0u8; START_INFO_SIZE];
        b[..14].copy_from_slice(b"xen-3.0-x86_64");
        b[32..40].copy_from_slice(&8192u64.to_le_bytes());
        b[40..48].copy_from_slice(&0x1_2345_6000u64.to_le_bytes());
        b[56..64].copy_from_slice(&0x4321u64.to_le_bytes());
        b[64..68].copy_from_slice(&1u32.to_le_bytes());
        b[72..80].copy_from_slice(&0x4322u64.to_le_bytes());
        b[80..84].copy_from_slice(&2u32.to_le_bytes());
        b[88..96].copy_from_slice(&0x40_2000u64.to_le_bytes());
        b[96..104].copy_from_slice(&6u64.to_le_bytes());
        b[104..112].copy_from_slice(&0x3f_0000u64.to_le_bytes());
        b[128..147].copy_from_slice(b"test=all log=debug\0");
        b
    }

    #[test]
    fn parses_a_domu_start_info() {
        let info = PvStartInfo::parse(&bytes()).unwrap();
        assert_eq!(info.nr_pages, 8192);
        assert_eq!(info.ram_bytes(), 32 << 20);
        assert_eq!(info.shared_info, 0x1_2345_6000);
        assert_eq!((info.store_mfn, info.store_evtchn), (0x4321, 1));
        assert_eq!(info.console(), Some((0x4322, 2)));
        assert_eq!((info.pt_base, info.nr_pt_frames, info.mfn_list), (0x40_2000, 6, 0x3f_0000));
        assert_eq!(info.cmdline(), "test=all log=debug");
    }

    #[test]
    fn rejects_what_cannot_be_a_domu_start_info() {
        let b = bytes();
        assert_eq!(PvStartInfo::parse(&b[..START_INFO_SIZE - 1]), Err(Error::Truncated));
        let mut bad = b;
        bad[..14].copy_from_slice(b"xen-3.0-x86_32");
        assert_eq!(PvStartInfo::parse(&bad), Err(Error::BadMagic));
        let mut dom0 = b;
        dom0[48] = SIF_INITDOMAIN as u8;
        assert_eq!(PvStartInfo::parse(&dom0), Err(Error::InitialDomain));
        let mut empty = b;
        empty[32..40].fill(0);
        assert_eq!(PvStartInfo::parse(&empty), Err(Error::BadNrPages(0)));
        let mut huge = b;
        huge[32..40].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
        assert!(matches!(PvStartInfo::parse(&huge), Err(Error::BadNrPages(_))));
        let mut unaligned = b;
        unaligned[40] = 8;
        assert_eq!(PvStartInfo::parse(&unaligned), Err(Error::BadField("shared_info", 0x1_2345_6008)));
        let mut no_p2m = b;
        no_p2m[104..112].fill(0);
        assert_eq!(PvStartInfo::parse(&no_p2m), Err(Error::BadField("mfn_list", 0)));
        let mut long = b;
        long[128..128 + CMDLINE_SIZE].fill(b'a');
        assert_eq!(PvStartInfo::parse(&long), Err(Error::CmdlineNotTerminated));
        let mut not_utf8 = b;
        not_utf8[128] = 0xff;
        assert_eq!(PvStartInfo::parse(&not_utf8), Err(Error::CmdlineNotUtf8));
    }

    #[test]
    fn no_console_when_the_mfn_is_zero() {
        let mut b = bytes();
        b[72..80].fill(0);
        assert_eq!(PvStartInfo::parse(&b).unwrap().console(), None);
    }

    #[test]
    fn p2m_translates_both_ways_within_its_length() {
        let list = [0x900, 0x901, 0x7777, 0x42];
        let p2m = P2m::new(&list);
        assert_eq!(p2m.mfn(2), Some(0x7777));
        assert_eq!(p2m.mfn(4), None);
        assert_eq!(p2m.pfn_of(0x42), Some(3));
        assert_eq!(p2m.pfn_of(0x43), None);
        assert_eq!(p2m.maddr(0x2123), Some(0x777_7123));
        assert_eq!(p2m.maddr(4 * 4096), None);
    }

    #[test]
    fn p2m_entries_no_pte_can_name_are_no_frame() {
        let list = [0x900, u64::MAX, MAX_MFN + 1, MAX_MFN];
        let p2m = P2m::new(&list);
        assert_eq!(p2m.mfn(1), None);
        assert_eq!(p2m.maddr(4096 + 8), None);
        assert_eq!(p2m.mfn(2), None);
        assert_eq!(p2m.pfn_of(u64::MAX), None);
        assert_eq!(p2m.mfn(3), Some(MAX_MFN));
        assert_eq!(p2m.maddr(3 * 4096 + 1), Some(MAX_MFN * 4096 + 1));
    }

    #[test]
    fn page_table_entries() {
        assert_eq!(leaf_pte(0x1234, true), 0x123_4000 | 0x63);
        assert_eq!(leaf_pte(0x1234, false), 0x123_4000 | 0x21);
        assert_eq!(table_pte(0x55), 0x5_5000 | 0x23);
        assert_eq!(pte_frame(leaf_pte(0x1234, true)), Some(0x1234));
        assert_eq!(pte_frame(0x123_4000), None);
        assert_eq!(pte_frame(0x20_0000 | pte::PRESENT | pte::HUGE), None);
    }
}
