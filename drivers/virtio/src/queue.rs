//! Split virtqueues (virtio 1.x, 2.7): the descriptor table, the driver
//! ("available") ring and the device ("used") ring, each in its own page.
//!
//! Every buffer is a single descriptor. Indices are free-running `u16`s
//! (they wrap at 65536, ring slots at the queue size). What the device
//! writes to the used ring is untrusted: an entry is accepted only if its id
//! names a descriptor that is outstanding, and its length fits the buffer;
//! anything else is reported to the caller, which counts and drops it.

use crate::{DmaMemory, PAGE_SIZE};
use alloc::vec::Vec;

/// Largest queue whose descriptor table fits in one page.
pub const MAX_QUEUE_SIZE: u16 = (PAGE_SIZE / DESC_SIZE) as u16;

const DESC_SIZE: u64 = 16;
const DESC_F_WRITE: u16 = 2;
/// avail.flags: do not interrupt on used buffers (we poll).
const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// used.flags: the device does not need notifications.
const USED_F_NO_NOTIFY: u16 = 1;

/// The three pages of a queue, as the device is told them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueAddrs {
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    addr: u64,
    len: u32,
}

/// A buffer the device has returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Used {
    pub id: u16,
    /// The buffer as it was added.
    pub addr: u64,
    pub capacity: u32,
    /// Bytes the device says it wrote (device-writable buffers).
    pub written: u32,
}

/// A used-ring entry that breaks the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsedError {
    /// The id is not a descriptor of this queue.
    IdOutOfRange { id: u32 },
    /// The descriptor is not outstanding (never added, or already used).
    NotOutstanding { id: u16 },
    /// The device claims to have written more than the buffer holds. The
    /// buffer is the driver's again (`used.written` is the bogus length).
    TooLong { used: Used },
    /// `used.idx` moved further than there can be buffers outstanding: the
    /// ring cannot be trusted any more, and nothing was consumed.
    IndexJump { from: u16, to: u16 },
}

pub struct SplitQueue {
    index: u16,
    size: u16,
    addrs: QueueAddrs,
    notify_offset: u32,
    free: Vec<u16>,
    slots: Vec<Option<Slot>>,
    /// Next avail.idx value (the shadow of what the device will see).
    avail_idx: u16,
    /// avail.idx as last published.
    published: u16,
    /// Next used entry to read.
    last_used: u16,
}

impl SplitQueue {
    /// Lays out an empty queue of `size` (a power of two, at most
    /// [`MAX_QUEUE_SIZE`]) in three zeroed pages.
    pub fn new<M: DmaMemory>(mem: &M, index: u16, size: u16, addrs: QueueAddrs, notify_offset: u32) -> SplitQueue {
        assert!(size.is_power_of_two() && size <= MAX_QUEUE_SIZE, "bad queue size {size}");
        let zero = [0u8; PAGE_SIZE as usize];
        for page in [addrs.desc, addrs.avail, addrs.used] {
            mem.write_bytes(page, &zero);
        }
        mem.write_u16(addrs.avail, AVAIL_F_NO_INTERRUPT);
        SplitQueue {
            index,
            size,
            addrs,
            notify_offset,
            free: (0..size).rev().collect(),
            slots: alloc::vec![None; usize::from(size)],
            avail_idx: 0,
            published: 0,
            last_used: 0,
        }
    }

    pub fn index(&self) -> u16 {
        self.index
    }

    pub fn size(&self) -> u16 {
        self.size
    }

    pub fn addrs(&self) -> QueueAddrs {
        self.addrs
    }

    /// Descriptors free for [`add`](Self::add).
    pub fn free_descriptors(&self) -> usize {
        self.free.len()
    }

    /// Buffers the device holds.
    pub fn outstanding(&self) -> usize {
        usize::from(self.size) - self.free.len()
    }

    /// Puts a buffer in the available ring (not yet visible to the device:
    /// see [`publish`](Self::publish)). `None` if every descriptor is in use.
    pub fn add<M: DmaMemory>(&mut self, mem: &M, addr: u64, len: u32, device_writable: bool) -> Option<u16> {
        let id = self.free.pop()?;
        let desc = self.addrs.desc + u64::from(id) * DESC_SIZE;
        mem.write_u64(desc, addr);
        mem.write_u32(desc + 8, len);
        mem.write_u16(desc + 12, if device_writable { DESC_F_WRITE } else { 0 });
        mem.write_u16(desc + 14, 0);
        let slot = u64::from(self.avail_idx % self.size);
        mem.write_u16(self.addrs.avail + 4 + 2 * slot, id);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.slots[usize::from(id)] = Some(Slot { addr, len });
        Some(id)
    }

    /// Makes the buffers added since the last call visible to the device.
    /// `None` if there were none; otherwise whether the device wants to be
    /// notified of them.
    pub fn publish<M: DmaMemory>(&mut self, mem: &M) -> Option<bool> {
        if self.avail_idx == self.published {
            return None;
        }
        // Descriptors and ring entries before the index that exposes them.
        mem.fence();
        mem.write_u16(self.addrs.avail + 2, self.avail_idx);
        self.published = self.avail_idx;
        // The index store before the flags load (2.7.13.3.1).
        mem.fence();
        Some(mem.read_u16(self.addrs.used) & USED_F_NO_NOTIFY == 0)
    }

    /// Offset of this queue's doorbell in the notification structure.
    pub fn notify_offset(&self) -> u32 {
        self.notify_offset
    }

    /// The next buffer the device has finished with, if any.
    pub fn pop_used<M: DmaMemory>(&mut self, mem: &M) -> Option<Result<Used, UsedError>> {
        let used_idx = mem.read_u16(self.addrs.used + 2);
        if used_idx == self.last_used {
            return None;
        }
        let pending = used_idx.wrapping_sub(self.last_used);
        if pending > self.size {
            return Some(Err(UsedError::IndexJump { from: self.last_used, to: used_idx }));
        }
        // The index load before the entry loads.
        mem.fence();
        let entry = self.addrs.used + 4 + 8 * u64::from(self.last_used % self.size);
        let (id, written) = (mem.read_u32(entry), mem.read_u32(entry + 4));
        self.last_used = self.last_used.wrapping_add(1);
        if id >= u32::from(self.size) {
            return Some(Err(UsedError::IdOutOfRange { id }));
        }
        let id = id as u16;
        let Some(slot) = self.slots[usize::from(id)].take() else {
            return Some(Err(UsedError::NotOutstanding { id }));
        };
        self.free.push(id);
        let used = Used { id, addr: slot.addr, capacity: slot.len, written };
        if written > slot.len {
            return Some(Err(UsedError::TooLong { used }));
        }
        Some(Ok(used))
    }
}
