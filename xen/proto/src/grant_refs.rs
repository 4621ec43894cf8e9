//! Allocation of grant references from a fixed range.
//!
//! The allocator only hands out numbers; filling grant entries is the
//! [`GrantTable`](crate::iface::GrantTable)'s job. Refs below
//! [`GNTTAB_NR_RESERVED_ENTRIES`] belong to the toolstack (console and
//! xenstore pages) and are never handed out.

use alloc::vec::Vec;

use crate::iface::{GrantRef, XenError};

/// `GNTTAB_NR_RESERVED_ENTRIES` from `public/grant_table.h`.
pub const GNTTAB_NR_RESERVED_ENTRIES: GrantRef = 8;

/// Why an allocator operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// Every ref in the range is allocated.
    #[error("grant refs exhausted")]
    Exhausted,
    /// The ref is in range but not allocated.
    #[error("grant ref {0} freed twice")]
    DoubleFree(GrantRef),
    /// The ref is outside this allocator's range.
    #[error("grant ref {0} not from this allocator")]
    Foreign(GrantRef),
    /// The requested range overlaps the reserved refs or overflows.
    #[error("grant ref range reserved or overflowing")]
    BadRange,
}

impl From<RefError> for XenError {
    fn from(e: RefError) -> XenError {
        match e {
            RefError::Exhausted => XenError::Exhausted,
            // EINVAL: the caller passed a ref that is not its to free.
            _ => XenError::Errno(-22),
        }
    }
}

/// A pool of refs `[first, first + count)` with O(1) alloc and free.
#[derive(Debug)]
pub struct RefAllocator {
    first: GrantRef,
    /// Free refs; popped from the end, so low refs go first.
    free: Vec<GrantRef>,
    /// `in_use[r - first]`.
    in_use: Vec<bool>,
}

impl RefAllocator {
    /// A pool of `count` refs starting at `first` (at least
    /// [`GNTTAB_NR_RESERVED_ENTRIES`]).
    pub fn new(first: GrantRef, count: u32) -> Result<RefAllocator, RefError> {
        if first < GNTTAB_NR_RESERVED_ENTRIES || first.checked_add(count).is_none() {
            return Err(RefError::BadRange);
        }
        Ok(RefAllocator { first, free: (first..first + count).rev().collect(), in_use: alloc::vec![false; count as usize] })
    }

    /// Takes a free ref.
    pub fn alloc(&mut self) -> Result<GrantRef, RefError> {
        let r = self.free.pop().ok_or(RefError::Exhausted)?;
        if let Some(slot) = self.slot(r) {
            *slot = true;
        }
        Ok(r)
    }

    /// Returns `r` to the pool.
    pub fn free(&mut self, r: GrantRef) -> Result<(), RefError> {
        let slot = self.slot(r).ok_or(RefError::Foreign(r))?;
        if !*slot {
            return Err(RefError::DoubleFree(r));
        }
        *slot = false;
        self.free.push(r);
        Ok(())
    }

    /// Whether `r` is currently allocated from this pool.
    pub fn is_allocated(&self, r: GrantRef) -> bool {
        r.checked_sub(self.first).and_then(|i| self.in_use.get(i as usize)).copied().unwrap_or(false)
    }

    /// Refs still allocated, ascending (for leak reports).
    pub fn outstanding(&self) -> Vec<GrantRef> {
        self.in_use.iter().enumerate().filter(|(_, &used)| used).map(|(i, _)| self.first + i as GrantRef).collect()
    }

    /// Number of free refs.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Size of the pool.
    pub fn capacity(&self) -> usize {
        self.in_use.len()
    }

    fn slot(&mut self, r: GrantRef) -> Option<&mut bool> {
        let i = r.checked_sub(self.first)?;
        self.in_use.get_mut(i as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn messages() {
        let all = [
            (RefError::Exhausted, "grant refs exhausted"),
            (RefError::DoubleFree(9), "grant ref 9 freed twice"),
            (RefError::Foreign(3), "grant ref 3 not from this allocator"),
            (RefError::BadRange, "grant ref range reserved or overflowing"),
        ];
        for (e, message) in all {
            assert_eq!(e.to_string(), message);
        }
    }

    #[test]
    fn alloc_until_exhausted_then_reuse() {
        let mut a = RefAllocator::new(8, 3).unwrap();
        assert_eq!((a.alloc(), a.alloc(), a.alloc()), (Ok(8), Ok(9), Ok(10)));
        assert_eq!(a.alloc(), Err(RefError::Exhausted));
        assert_eq!(a.outstanding(), vec![8, 9, 10]);
        a.free(9).unwrap();
        assert_eq!(a.available(), 1);
        assert_eq!(a.alloc(), Ok(9));
        assert_eq!(XenError::from(RefError::Exhausted), XenError::Exhausted);
    }

    #[test]
    fn double_free_and_foreign() {
        let mut a = RefAllocator::new(10, 4).unwrap();
        let r = a.alloc().unwrap();
        a.free(r).unwrap();
        assert_eq!(a.free(r), Err(RefError::DoubleFree(r)));
        assert_eq!(a.free(9), Err(RefError::Foreign(9)));
        assert_eq!(a.free(14), Err(RefError::Foreign(14)));
        assert_eq!(a.free(u32::MAX), Err(RefError::Foreign(u32::MAX)));
        assert!(a.outstanding().is_empty());
        assert!(!a.is_allocated(0));
    }

    #[test]
    fn reserved_and_overflowing_ranges_rejected() {
        assert_eq!(RefAllocator::new(0, 4).unwrap_err(), RefError::BadRange);
        assert_eq!(RefAllocator::new(7, 4).unwrap_err(), RefError::BadRange);
        assert_eq!(RefAllocator::new(u32::MAX, 2).unwrap_err(), RefError::BadRange);
        let mut empty = RefAllocator::new(8, 0).unwrap();
        assert_eq!(empty.alloc(), Err(RefError::Exhausted));
        assert_eq!(empty.capacity(), 0);
    }
}
