//! Physical frame allocator: one bit per 4 KiB frame, over storage the
//! caller provides (the kernel uses a static array, since it runs before
//! the heap exists).

pub const FRAME_SIZE: u64 = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeError {
    Unaligned(u64),
    OutOfRange(u64),
    NotAllocated(u64),
}

/// Bit set = frame not available (in use, reserved, or not RAM).
pub struct FrameBitmap<'a> {
    words: &'a mut [u64],
    free: usize,
    allocated: usize,
    /// Word index where the next search starts.
    hint: usize,
}

impl<'a> FrameBitmap<'a> {
    /// Starts with every frame unavailable.
    pub fn new(words: &'a mut [u64]) -> Self {
        words.fill(u64::MAX);
        FrameBitmap { words, free: 0, allocated: 0, hint: 0 }
    }

    /// Number of frames the storage can describe.
    pub fn capacity(&self) -> u64 {
        self.words.len() as u64 * 64
    }

    /// Marks the whole frames inside `[start, end)` free; the part beyond
    /// the bitmap's capacity is ignored.
    pub fn add_free(&mut self, start: u64, end: u64) {
        let first = start.div_ceil(FRAME_SIZE);
        let last = (end / FRAME_SIZE).min(self.capacity());
        for frame in first..last {
            if self.take_bit(frame, false) {
                self.free += 1;
            }
        }
    }

    /// Marks every frame touching `[start, end)` unavailable.
    pub fn reserve(&mut self, start: u64, end: u64) {
        let first = start / FRAME_SIZE;
        let last = end.div_ceil(FRAME_SIZE).min(self.capacity());
        for frame in first..last {
            if self.take_bit(frame, true) {
                self.free -= 1;
            }
        }
    }

    /// Allocates one frame and returns its physical address.
    pub fn alloc(&mut self) -> Option<u64> {
        let n = self.words.len();
        for i in (self.hint..n).chain(0..self.hint) {
            let word = self.words[i];
            if word != u64::MAX {
                let bit = u64::from(word.trailing_ones());
                let frame = i as u64 * 64 + bit;
                self.words[i] |= 1 << bit;
                self.hint = i;
                self.free -= 1;
                self.allocated += 1;
                return Some(frame * FRAME_SIZE);
            }
        }
        None
    }

    /// Allocates `count` physically contiguous frames starting at a multiple
    /// of `align` frames (`align` ≥ 1). First fit.
    pub fn alloc_contiguous(&mut self, count: u64, align: u64) -> Option<u64> {
        if count == 0 || align == 0 || count > self.free as u64 {
            return None;
        }
        let cap = self.capacity();
        let mut start: u64 = 0;
        while start.checked_add(count)? <= cap {
            match (start..start + count).find(|&f| self.is_taken(f)) {
                Some(taken) => start = (taken + 1).div_ceil(align) * align,
                None => {
                    for frame in start..start + count {
                        self.take_bit(frame, true);
                    }
                    self.free -= count as usize;
                    self.allocated += count as usize;
                    return Some(start * FRAME_SIZE);
                }
            }
        }
        None
    }

    /// Returns an allocated frame. Double frees and foreign addresses are
    /// errors: they mean a bookkeeping bug elsewhere.
    pub fn free(&mut self, addr: u64) -> Result<(), FreeError> {
        if !addr.is_multiple_of(FRAME_SIZE) {
            return Err(FreeError::Unaligned(addr));
        }
        let frame = addr / FRAME_SIZE;
        if frame >= self.capacity() {
            return Err(FreeError::OutOfRange(addr));
        }
        if !self.is_taken(frame) || self.allocated == 0 {
            return Err(FreeError::NotAllocated(addr));
        }
        self.take_bit(frame, false);
        self.free += 1;
        self.allocated -= 1;
        Ok(())
    }

    pub fn free_frames(&self) -> usize {
        self.free
    }

    /// Frames handed out by `alloc`/`alloc_contiguous` and not yet freed.
    pub fn allocated_frames(&self) -> usize {
        self.allocated
    }

    fn is_taken(&self, frame: u64) -> bool {
        self.words[(frame / 64) as usize] & (1 << (frame % 64)) != 0
    }

    /// Sets the frame's bit to `taken`; returns whether it changed.
    fn take_bit(&mut self, frame: u64, taken: bool) -> bool {
        let was = self.is_taken(frame);
        let word = &mut self.words[(frame / 64) as usize];
        if taken {
            *word |= 1 << (frame % 64);
        } else {
            *word &= !(1 << (frame % 64));
        }
        was != taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::vec;

    const MIB: u64 = 1 << 20;

    #[test]
    fn only_added_ranges_are_handed_out() {
        let mut words = vec![0u64; 64]; // 4096 frames = 16 MiB
        let mut frames = FrameBitmap::new(&mut words);
        assert_eq!(frames.alloc(), None);
        frames.add_free(MIB + 100, 2 * MIB); // first partial frame skipped
        assert_eq!(frames.free_frames(), 255);
        let mut seen = BTreeSet::new();
        while let Some(addr) = frames.alloc() {
            assert!(addr > MIB && addr + FRAME_SIZE <= 2 * MIB, "{addr:#x}");
            assert!(seen.insert(addr), "handed out twice: {addr:#x}");
        }
        assert_eq!(seen.len(), 255);
        assert_eq!(frames.allocated_frames(), 255);
        assert_eq!(frames.free_frames(), 0);
    }

    #[test]
    fn reserve_takes_frames_out() {
        let mut words = vec![0u64; 64];
        let mut frames = FrameBitmap::new(&mut words);
        frames.add_free(0, 16 * MIB);
        frames.reserve(0, MIB);
        frames.reserve(MIB + 1, MIB + 2); // touches one frame
        assert_eq!(frames.free_frames(), 4096 - 256 - 1);
        frames.reserve(0, MIB); // again: no double count
        assert_eq!(frames.free_frames(), 4096 - 256 - 1);
        let first = frames.alloc().unwrap();
        assert_eq!(first, MIB + FRAME_SIZE);
        assert_eq!(frames.allocated_frames(), 1);
    }

    #[test]
    fn capacity_clamps_ranges() {
        let mut words = vec![0u64; 1];
        let mut frames = FrameBitmap::new(&mut words);
        frames.add_free(0, u64::MAX);
        assert_eq!(frames.free_frames(), 64);
        frames.reserve(0, u64::MAX);
        assert_eq!(frames.free_frames(), 0);
    }

    #[test]
    fn free_checks_its_argument() {
        let mut words = vec![0u64; 2];
        let mut frames = FrameBitmap::new(&mut words);
        frames.add_free(0, 128 * FRAME_SIZE);
        frames.reserve(0, FRAME_SIZE);
        let a = frames.alloc().unwrap();
        assert_eq!(frames.free(a + 1), Err(FreeError::Unaligned(a + 1)));
        assert_eq!(frames.free(1 << 40), Err(FreeError::OutOfRange(1 << 40)));
        assert_eq!(frames.free(a), Ok(()));
        assert_eq!(frames.free(a), Err(FreeError::NotAllocated(a)));
        // A reserved frame was never allocated.
        assert_eq!(frames.free(0), Err(FreeError::NotAllocated(0)));
        assert_eq!(frames.allocated_frames(), 0);
        assert_eq!(frames.free_frames(), 127);
    }

    #[test]
    fn contiguous_respects_alignment_and_holes() {
        let mut words = vec![0u64; 64];
        let mut frames = FrameBitmap::new(&mut words);
        frames.add_free(0, 16 * MIB);
        frames.reserve(0, 3 * FRAME_SIZE);
        frames.reserve(9 * FRAME_SIZE, 10 * FRAME_SIZE);
        // 6 frames fit between the holes at 3..9.
        assert_eq!(frames.alloc_contiguous(6, 1), Some(3 * FRAME_SIZE));
        // Aligned to 8 frames, 4 frames: 8 is taken by the previous alloc? No:
        // 3..9 is taken and 9 is reserved, so the first fit is 16.
        assert_eq!(frames.alloc_contiguous(4, 8), Some(16 * FRAME_SIZE));
        let big = frames.alloc_contiguous(512, 512).unwrap();
        assert_eq!(big % (512 * FRAME_SIZE), 0);
        assert_eq!(frames.allocated_frames(), 6 + 4 + 512);
        assert_eq!(frames.alloc_contiguous(1 << 20, 1), None);
        assert_eq!(frames.alloc_contiguous(0, 1), None);
        for i in 0..512 {
            frames.free(big + i * FRAME_SIZE).unwrap();
        }
        assert_eq!(frames.alloc_contiguous(512, 512), Some(big));
    }

    #[test]
    fn alloc_wraps_around_the_hint() {
        let mut words = vec![0u64; 4];
        let mut frames = FrameBitmap::new(&mut words);
        frames.add_free(0, 256 * FRAME_SIZE);
        let all: std::vec::Vec<u64> = core::iter::from_fn(|| frames.alloc()).collect();
        assert_eq!(all.len(), 256);
        frames.free(all[3]).unwrap();
        assert_eq!(frames.alloc(), Some(all[3]));
    }
}
