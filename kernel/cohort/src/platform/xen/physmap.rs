//! Guest-physical frames with no RAM behind them, above the highest RAM in
//! the memory map: where grant-table frames and peers' grants are mapped.
//! (Mapping a grant over a RAM frame would lose that frame for good: Xen
//! leaves it empty on unmap.)

use cohort_boot::memmap::MemoryMap;

/// 16 MiB of window: 4096 frames.
pub const WINDOW_FRAMES: usize = 4096;
const WORDS: usize = WINDOW_FRAMES / 64;

pub struct Window {
    base: u64,
    used: [u64; WORDS],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The window would overlap the memory map or leave the identity map.
    NoRoom,
    Exhausted,
    NotInWindow(u64),
}

/// Where the window lies for RAM ending at `ram_end`: `[base, end)`.
pub fn span(ram_end: u64) -> (u64, u64) {
    let base = ram_end.div_ceil(2 << 20) * (2 << 20);
    (base, base + (WINDOW_FRAMES as u64) * 4096)
}

impl Window {
    /// Places the window right above RAM (2 MiB aligned) where no region of
    /// the memory map lies and the identity map reaches.
    pub fn new(map: &MemoryMap) -> Result<Window, Error> {
        let (base, end) = span(map.ram_end());
        let overlaps = map.regions().iter().any(|r| r.base < end && r.end() > base);
        if overlaps || end > crate::arch::paging::IDENTITY_MAP_END {
            return Err(Error::NoRoom);
        }
        Ok(Window { base, used: [0; WORDS] })
    }

    pub fn alloc(&mut self) -> Result<u64, Error> {
        let (w, word) = self.used.iter_mut().enumerate().find(|(_, w)| **w != u64::MAX).ok_or(Error::Exhausted)?;
        let bit = word.trailing_ones() as u64;
        *word |= 1 << bit;
        Ok(self.base + (w as u64 * 64 + bit) * 4096)
    }

    /// `n` contiguous frames of the window (first fit).
    pub fn alloc_contiguous(&mut self, n: usize) -> Result<u64, Error> {
        let is_used = |used: &[u64; WORDS], i: usize| used[i / 64] & (1 << (i % 64)) != 0;
        let mut start = 0;
        while start + n <= WINDOW_FRAMES {
            match (start..start + n).find(|&i| is_used(&self.used, i)) {
                Some(taken) => start = taken + 1,
                None => {
                    for i in start..start + n {
                        self.used[i / 64] |= 1 << (i % 64);
                    }
                    return Ok(self.base + start as u64 * 4096);
                }
            }
        }
        Err(Error::Exhausted)
    }

    pub fn free(&mut self, addr: u64) -> Result<(), Error> {
        let index = addr.checked_sub(self.base).map(|o| o / 4096).filter(|&i| i < WINDOW_FRAMES as u64);
        let index = index.ok_or(Error::NotInWindow(addr))?;
        let bit = 1 << (index % 64);
        let word = &mut self.used[(index / 64) as usize];
        if *word & bit == 0 {
            return Err(Error::NotInWindow(addr));
        }
        *word &= !bit;
        Ok(())
    }
}
