//! The physical memory map, as given by `hvm_start_info` (QEMU, Xen ≥ 4.11
//! with version 1) or by `XENMEM_memory_map` (Xen with version 0).

use core::fmt;

/// Region types of the E820-style map (`XEN_HVM_MEMMAP_TYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    Ram,
    Reserved,
    AcpiReclaimable,
    AcpiNvs,
    Unusable,
    Disabled,
    Persistent,
    Other(u32),
}

impl RegionKind {
    pub fn from_raw(raw: u32) -> Self {
        match raw {
            1 => RegionKind::Ram,
            2 => RegionKind::Reserved,
            3 => RegionKind::AcpiReclaimable,
            4 => RegionKind::AcpiNvs,
            5 => RegionKind::Unusable,
            6 => RegionKind::Disabled,
            7 => RegionKind::Persistent,
            other => RegionKind::Other(other),
        }
    }

    fn name(self) -> &'static str {
        match self {
            RegionKind::Ram => "ram",
            RegionKind::Reserved => "reserved",
            RegionKind::AcpiReclaimable => "acpi",
            RegionKind::AcpiNvs => "acpi-nvs",
            RegionKind::Unusable => "unusable",
            RegionKind::Disabled => "disabled",
            RegionKind::Persistent => "pmem",
            RegionKind::Other(_) => "other",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub base: u64,
    pub len: u64,
    pub kind: RegionKind,
}

impl Region {
    /// End address, saturating: a bogus length must not wrap around.
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.len)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:#012x}-{:#012x}) {:>8} KiB {}", self.base, self.end(), self.len / 1024, self.kind.name())
    }
}

/// Most maps have fewer than ten entries; more are dropped and counted.
pub const MAX_REGIONS: usize = 64;

/// A fixed-capacity copy of the memory map: it is built before the heap exists.
#[derive(Clone, Debug)]
pub struct MemoryMap {
    regions: [Region; MAX_REGIONS],
    count: usize,
    dropped: usize,
}

impl Default for MemoryMap {
    fn default() -> Self {
        MemoryMap { regions: [Region { base: 0, len: 0, kind: RegionKind::Reserved }; MAX_REGIONS], count: 0, dropped: 0 }
    }
}

impl MemoryMap {
    /// Adds a region; empty ones are skipped and overflow is counted.
    pub fn push(&mut self, region: Region) {
        if region.len == 0 {
            return;
        }
        match self.regions.get_mut(self.count) {
            Some(slot) => {
                *slot = region;
                self.count += 1;
            }
            None => self.dropped += 1,
        }
    }

    pub fn regions(&self) -> &[Region] {
        &self.regions[..self.count]
    }

    /// Entries that did not fit in `MAX_REGIONS`.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    pub fn ram(&self) -> impl Iterator<Item = &Region> {
        self.regions().iter().filter(|r| r.kind == RegionKind::Ram)
    }

    pub fn total_ram(&self) -> u64 {
        self.ram().fold(0u64, |sum, r| sum.saturating_add(r.len))
    }

    /// First address above all RAM: a guest-physical range from here up has
    /// no RAM behind it (where peers' grants get mapped).
    pub fn ram_end(&self) -> u64 {
        self.ram().map(Region::end).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    fn ram(base: u64, len: u64) -> Region {
        Region { base, len, kind: RegionKind::Ram }
    }

    #[test]
    fn totals_count_only_ram() {
        let mut map = MemoryMap::default();
        map.push(ram(0, 0x9fc00));
        map.push(Region { base: 0xf0000, len: 0x10000, kind: RegionKind::Reserved });
        map.push(ram(0x100000, 31 << 20));
        map.push(Region { base: 0xfeffc000, len: 0x4000, kind: RegionKind::from_raw(2) });
        assert_eq!(map.regions().len(), 4);
        assert_eq!(map.total_ram(), 0x9fc00 + (31 << 20));
        assert_eq!(map.ram_end(), 0x100000 + (31 << 20));
    }

    #[test]
    fn overflow_is_counted_and_empty_skipped() {
        let mut map = MemoryMap::default();
        map.push(ram(0, 0));
        for i in 0..(MAX_REGIONS as u64 + 3) {
            map.push(ram(i << 20, 4096));
        }
        assert_eq!(map.regions().len(), MAX_REGIONS);
        assert_eq!(map.dropped(), 3);
    }

    #[test]
    fn bogus_length_saturates() {
        let r = ram(u64::MAX - 10, 100);
        assert_eq!(r.end(), u64::MAX);
        let mut map = MemoryMap::default();
        map.push(r);
        map.push(ram(0, u64::MAX));
        assert_eq!(map.total_ram(), u64::MAX);
    }

    #[test]
    fn kinds_round_trip_and_display() {
        assert_eq!(RegionKind::from_raw(1), RegionKind::Ram);
        assert_eq!(RegionKind::from_raw(4), RegionKind::AcpiNvs);
        assert_eq!(RegionKind::from_raw(99), RegionKind::Other(99));
        let text = format!("{}", ram(0x100000, 0x200000));
        assert!(text.contains("2048 KiB ram"), "{text}");
    }
}
