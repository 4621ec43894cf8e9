//! A bounded table of in-flight requests keyed by `req_id`.
//!
//! The daemon echoes `req_id` in each reply; the table allocates ids,
//! remembers what each request was waiting for and flags replies that
//! match nothing (a confused or hostile daemon). The bound stops a caller
//! from queueing unlimited work on a slow daemon. Lookups are linear: the
//! table is meant to be small.

use alloc::vec::Vec;

use crate::error::Error;

/// In-flight requests, at most `capacity` at once.
#[derive(Debug)]
pub struct Pending<T> {
    entries: Vec<(u32, T)>,
    capacity: usize,
    next_id: u32,
}

impl<T> Pending<T> {
    /// An empty table holding at most `capacity` requests.
    pub fn new(capacity: usize) -> Pending<T> {
        Pending { entries: Vec::new(), capacity, next_id: 1 }
    }

    /// Stores `value` under a fresh `req_id` and returns that id.
    ///
    /// Ids are free-running, skip 0 (which daemons use for unsolicited
    /// watch events) and skip ids still in use after wrap-around.
    pub fn insert(&mut self, value: T) -> Result<u32, Error> {
        if self.is_full() {
            return Err(Error::PendingFull);
        }
        // Terminates: fewer than `capacity` ids are taken, and far more
        // than that exist.
        let id = loop {
            let candidate = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            if candidate != 0 && !self.contains(candidate) {
                break candidate;
            }
        };
        self.entries.push((id, value));
        Ok(id)
    }

    /// Removes and returns the entry for a reply's `req_id`, or
    /// [`Error::UnknownReqId`] if nothing is waiting on it.
    pub fn remove(&mut self, req_id: u32) -> Result<T, Error> {
        let pos = self.entries.iter().position(|(id, _)| *id == req_id).ok_or(Error::UnknownReqId(req_id))?;
        Ok(self.entries.swap_remove(pos).1)
    }

    /// The entry for `req_id`, if pending.
    pub fn get(&self, req_id: u32) -> Option<&T> {
        self.entries.iter().find(|(id, _)| *id == req_id).map(|(_, v)| v)
    }

    /// Mutable access to the entry for `req_id`, if pending.
    pub fn get_mut(&mut self, req_id: u32) -> Option<&mut T> {
        self.entries.iter_mut().find(|(id, _)| *id == req_id).map(|(_, v)| v)
    }

    /// Whether `req_id` is pending.
    pub fn contains(&self, req_id: u32) -> bool {
        self.entries.iter().any(|(id, _)| *id == req_id)
    }

    /// Number of pending requests.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether [`insert`](Self::insert) would fail.
    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.capacity
    }

    /// Maximum number of pending requests.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Removes every entry, e.g. to fail all waiters when the ring dies.
    pub fn drain(&mut self) -> impl Iterator<Item = (u32, T)> + '_ {
        self.entries.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn insert_remove_and_full() {
        let mut p = Pending::new(2);
        let a = p.insert("a").unwrap();
        let b = p.insert("b").unwrap();
        assert_ne!(a, b);
        assert_ne!(a, 0);
        assert!(p.is_full());
        assert_eq!(p.insert("c"), Err(Error::PendingFull));
        assert_eq!(p.get(b), Some(&"b"));
        assert_eq!(p.remove(a), Ok("a"));
        assert_eq!(p.remove(a), Err(Error::UnknownReqId(a)));
        assert_eq!(p.remove(999), Err(Error::UnknownReqId(999)));
        assert_eq!(p.len(), 1);
        let c = p.insert("c").unwrap();
        assert!(c != a && c != b);
        if let Some(v) = p.get_mut(c) {
            *v = "C";
        }
        assert_eq!(p.remove(c), Ok("C"));
    }

    #[test]
    fn zero_capacity_is_always_full() {
        let mut p: Pending<()> = Pending::new(0);
        assert_eq!(p.insert(()), Err(Error::PendingFull));
        assert!(p.is_empty());
    }

    #[test]
    fn ids_wrap_skipping_zero_and_live_ids() {
        let mut p = Pending::new(4);
        p.next_id = u32::MAX - 1;
        let a = p.insert(1).unwrap();
        let b = p.insert(2).unwrap();
        let c = p.insert(3).unwrap();
        assert_eq!((a, b, c), (u32::MAX - 1, u32::MAX, 1));
        // Force reuse pressure: the next candidate collides with live ids.
        p.next_id = u32::MAX - 1;
        let d = p.insert(4).unwrap();
        assert_eq!(d, 2);
        let mut drained: Vec<_> = p.drain().collect();
        drained.sort();
        assert_eq!(drained, vec![(1, 3), (2, 4), (u32::MAX - 1, 1), (u32::MAX, 2)]);
        assert!(p.is_empty());
    }
}
