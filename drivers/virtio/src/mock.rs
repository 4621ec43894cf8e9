//! An in-memory virtio-net device for host tests: the other side of the
//! rings, in the spirit of rust-vmm virtio-queue's `mock.rs`.
//!
//! [`MockMemory`] is a block of "guest memory" handed out page by page; it
//! panics on any access outside a page it handed out (a driver bug) and
//! reports pages not given back. [`MockDevice`] implements [`Transport`]
//! with the common-configuration semantics of a virtio 1.x PCI device
//! (feature windows, status handshake, queue registers) and, driven
//! explicitly by the test, consumes what the driver made available and
//! fills the used rings: [`MockDevice::receive_frame`] delivers a frame,
//! [`MockDevice::transmit_frames`] collects what the driver sent. Fault
//! injection writes arbitrary used entries. Protocol mistakes by the driver
//! are recorded in [`MockDevice::violations`].

use crate::features::{common, status};
use crate::net::NET_HDR_LEN;
use crate::{DmaMemory, Transport, PAGE_SIZE};
use alloc::collections::BTreeSet;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

struct MemInner {
    base: u64,
    bytes: Vec<u8>,
    free: Vec<u64>,
    allocated: BTreeSet<u64>,
}

/// Shared "guest memory"; clones share it.
#[derive(Clone)]
pub struct MockMemory(Rc<RefCell<MemInner>>);

impl MockMemory {
    /// `pages` pages at bus address `base` (page aligned).
    pub fn new(base: u64, pages: usize) -> MockMemory {
        assert_eq!(base % PAGE_SIZE, 0);
        let free = (0..pages as u64).rev().map(|i| base + i * PAGE_SIZE).collect();
        MockMemory(Rc::new(RefCell::new(MemInner {
            base,
            bytes: vec![0xa5; pages * PAGE_SIZE as usize],
            free,
            allocated: BTreeSet::new(),
        })))
    }

    /// Pages handed out and not freed.
    pub fn pages_in_use(&self) -> usize {
        self.0.borrow().allocated.len()
    }

    fn range(&self, addr: u64, len: usize, align: u64) -> core::ops::Range<usize> {
        let inner = self.0.borrow();
        let page = addr & !(PAGE_SIZE - 1);
        assert!(addr & (align - 1) == 0, "unaligned access: {len} bytes at {addr:#x}");
        assert!(
            len == 0 || (addr + len as u64 - 1) & !(PAGE_SIZE - 1) == page,
            "access crosses a page: {len} bytes at {addr:#x}"
        );
        assert!(inner.allocated.contains(&page), "access to a page not allocated: {len} bytes at {addr:#x}");
        let start = (addr - inner.base) as usize;
        start..start + len
    }

    fn read<const N: usize>(&self, addr: u64) -> [u8; N] {
        let r = self.range(addr, N, N as u64);
        self.0.borrow().bytes[r].try_into().unwrap()
    }

    fn write(&self, addr: u64, data: &[u8], align: u64) {
        let r = self.range(addr, data.len(), align);
        self.0.borrow_mut().bytes[r].copy_from_slice(data);
    }
}

impl DmaMemory for MockMemory {
    fn alloc_page(&self) -> Option<u64> {
        let mut inner = self.0.borrow_mut();
        let page = inner.free.pop()?;
        inner.allocated.insert(page);
        Some(page)
    }

    fn free_page(&self, addr: u64) {
        let mut inner = self.0.borrow_mut();
        assert!(inner.allocated.remove(&addr), "freeing {addr:#x}, which is not allocated");
        inner.free.push(addr);
    }

    fn read_u16(&self, addr: u64) -> u16 {
        u16::from_le_bytes(self.read(addr))
    }

    fn read_u32(&self, addr: u64) -> u32 {
        u32::from_le_bytes(self.read(addr))
    }

    fn write_u16(&self, addr: u64, value: u16) {
        self.write(addr, &value.to_le_bytes(), 2);
    }

    fn write_u32(&self, addr: u64, value: u32) {
        self.write(addr, &value.to_le_bytes(), 4);
    }

    fn write_u64(&self, addr: u64, value: u64) {
        self.write(addr, &value.to_le_bytes(), 8);
    }

    fn read_bytes(&self, addr: u64, buf: &mut [u8]) {
        let r = self.range(addr, buf.len(), 1);
        buf.copy_from_slice(&self.0.borrow().bytes[r]);
    }

    fn write_bytes(&self, addr: u64, data: &[u8]) {
        self.write(addr, data, 1);
    }
}

#[derive(Clone, Debug, Default)]
struct MockQueue {
    max_size: u16,
    size: u16,
    enabled: bool,
    desc: u64,
    driver: u64,
    device: u64,
    notify_off: u16,
    last_avail: u16,
    used_idx: u16,
    notifications: u64,
}

/// Settings of a [`MockDevice`].
#[derive(Clone, Debug)]
pub struct MockConfig {
    pub offered_features: u64,
    /// Clear `FEATURES_OK` whatever the driver accepted.
    pub reject_features: bool,
    pub num_queues: u16,
    pub queue_max_size: u16,
    pub mac: [u8; 6],
    pub link_up: bool,
    pub notify_off_multiplier: u32,
    /// Keep `VIRTQ_USED_F_NO_NOTIFY` set in every used ring.
    pub suppress_notifications: bool,
}

impl Default for MockConfig {
    fn default() -> MockConfig {
        use crate::features::*;
        MockConfig {
            // What QEMU's virtio-net offers, offloads included: the driver
            // must decline them.
            offered_features: VIRTIO_F_VERSION_1
                | VIRTIO_F_EVENT_IDX
                | VIRTIO_F_INDIRECT_DESC
                | VIRTIO_NET_F_CSUM
                | VIRTIO_NET_F_GUEST_CSUM
                | VIRTIO_NET_F_MAC
                | VIRTIO_NET_F_GUEST_TSO4
                | VIRTIO_NET_F_HOST_TSO4
                | VIRTIO_NET_F_MRG_RXBUF
                | VIRTIO_NET_F_STATUS
                | VIRTIO_NET_F_CTRL_VQ,
            reject_features: false,
            num_queues: 3,
            queue_max_size: 256,
            mac: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56],
            link_up: true,
            notify_off_multiplier: 4,
            suppress_notifications: false,
        }
    }
}

struct DevInner {
    mem: MockMemory,
    config: MockConfig,
    device_feature_select: u32,
    driver_feature_select: u32,
    driver_features: u64,
    status: u8,
    generation: u8,
    queue_select: u16,
    queues: Vec<MockQueue>,
    violations: Vec<String>,
    resets: u64,
}

impl DevInner {
    fn reset(&mut self) {
        self.driver_features = 0;
        self.status = 0;
        self.device_feature_select = 0;
        self.driver_feature_select = 0;
        self.queue_select = 0;
        let max = self.config.queue_max_size;
        self.queues = (0..self.config.num_queues)
            .map(|i| MockQueue { max_size: max, size: max, notify_off: i, ..MockQueue::default() })
            .collect();
        self.resets += 1;
    }

    fn queue(&mut self) -> Option<&mut MockQueue> {
        let q = usize::from(self.queue_select);
        self.queues.get_mut(q)
    }

    fn violation(&mut self, what: String) {
        self.violations.push(what);
    }

    fn set_status(&mut self, value: u8) {
        if value == 0 {
            self.reset();
            return;
        }
        if value & !self.status & status::FEATURES_OK != 0 {
            let unoffered = self.driver_features & !self.config.offered_features;
            if unoffered != 0 {
                self.violation(format!("driver accepted features not offered: {unoffered:#x}"));
            }
            if unoffered != 0 || self.config.reject_features {
                self.status = value & !status::FEATURES_OK;
                return;
            }
        }
        if value & status::DRIVER_OK != 0 && value & status::FEATURES_OK == 0 && value & status::FAILED == 0 {
            self.violation(String::from("DRIVER_OK without FEATURES_OK"));
        }
        self.status = value;
    }

    fn queue_write(&mut self, offset: u16, value: u32) {
        if self.status & status::DRIVER_OK != 0 {
            self.violation(format!("queue register {offset:#x} written after DRIVER_OK"));
        }
        let Some(q) = self.queue() else { return };
        let hi = |old: u64, v: u32| (old & 0xffff_ffff) | u64::from(v) << 32;
        let lo = |old: u64, v: u32| (old & !0xffff_ffff) | u64::from(v);
        match offset {
            common::QUEUE_SIZE => q.size = value as u16,
            common::QUEUE_ENABLE => q.enabled = value == 1,
            common::QUEUE_DESC => q.desc = lo(q.desc, value),
            o if o == common::QUEUE_DESC + 4 => q.desc = hi(q.desc, value),
            common::QUEUE_DRIVER => q.driver = lo(q.driver, value),
            o if o == common::QUEUE_DRIVER + 4 => q.driver = hi(q.driver, value),
            common::QUEUE_DEVICE => q.device = lo(q.device, value),
            o if o == common::QUEUE_DEVICE + 4 => q.device = hi(q.device, value),
            _ => {}
        }
        let bad_size = q.size == 0 || q.size > q.max_size || !q.size.is_power_of_two();
        if offset == common::QUEUE_ENABLE && bad_size {
            let size = q.size;
            self.violation(format!("queue enabled with size {size}"));
        }
    }
}

/// The device; clones share it (one for the driver, one for the test).
#[derive(Clone)]
pub struct MockDevice(Rc<RefCell<DevInner>>);

/// A buffer taken from an available ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvailBuffer {
    pub id: u16,
    pub addr: u64,
    pub len: u32,
    pub writable: bool,
}

impl MockDevice {
    pub fn new(mem: &MockMemory, config: MockConfig) -> MockDevice {
        let mut inner = DevInner {
            mem: mem.clone(),
            config,
            device_feature_select: 0,
            driver_feature_select: 0,
            driver_features: 0,
            status: 0,
            generation: 0,
            queue_select: 0,
            queues: Vec::new(),
            violations: Vec::new(),
            resets: 0,
        };
        inner.reset();
        inner.resets = 0;
        MockDevice(Rc::new(RefCell::new(inner)))
    }

    pub fn status(&self) -> u8 {
        self.0.borrow().status
    }

    pub fn driver_features(&self) -> u64 {
        self.0.borrow().driver_features
    }

    pub fn resets(&self) -> u64 {
        self.0.borrow().resets
    }

    pub fn violations(&self) -> Vec<String> {
        self.0.borrow().violations.clone()
    }

    /// Doorbell writes for queue `q`.
    pub fn notifications(&self, q: u16) -> u64 {
        self.0.borrow().queues.get(usize::from(q)).map_or(0, |q| q.notifications)
    }

    pub fn queue_size(&self, q: u16) -> u16 {
        self.0.borrow().queues[usize::from(q)].size
    }

    pub fn set_link(&self, up: bool) {
        let mut inner = self.0.borrow_mut();
        inner.config.link_up = up;
        inner.generation = inner.generation.wrapping_add(1);
    }

    fn ready(&self, q: u16) -> bool {
        let inner = self.0.borrow();
        inner.status & status::DRIVER_OK != 0
            && inner.status & status::FAILED == 0
            && inner.queues.get(usize::from(q)).is_some_and(|q| q.enabled)
    }

    /// Takes the next buffer the driver made available on queue `q`.
    pub fn pop_avail(&self, q: u16) -> Option<AvailBuffer> {
        if !self.ready(q) {
            return None;
        }
        let mut inner = self.0.borrow_mut();
        let mem = inner.mem.clone();
        let queue = inner.queues[usize::from(q)].clone();
        let avail_idx = mem.read_u16(queue.driver + 2);
        if avail_idx == queue.last_avail {
            return None;
        }
        if avail_idx.wrapping_sub(queue.last_avail) > queue.size {
            inner.violation(format!("queue {q}: avail.idx {avail_idx} is more than a ring ahead of {}", queue.last_avail));
            return None;
        }
        let id = mem.read_u16(queue.driver + 4 + 2 * u64::from(queue.last_avail % queue.size));
        inner.queues[usize::from(q)].last_avail = queue.last_avail.wrapping_add(1);
        if id >= queue.size {
            inner.violation(format!("queue {q}: avail entry names descriptor {id}"));
            return None;
        }
        let desc = queue.desc + 16 * u64::from(id);
        let addr = u64::from(mem.read_u32(desc)) | u64::from(mem.read_u32(desc + 4)) << 32;
        let len = mem.read_u32(desc + 8);
        let flags = mem.read_u16(desc + 12);
        if flags & !2 != 0 {
            inner.violation(format!("queue {q}: descriptor {id} has flags {flags:#x}"));
        }
        Some(AvailBuffer { id, addr, len, writable: flags & 2 != 0 })
    }

    /// Writes a used entry as given (no checks: fault injection too).
    pub fn push_used(&self, q: u16, id: u32, len: u32) {
        let mut inner = self.0.borrow_mut();
        let mem = inner.mem.clone();
        let suppress = inner.config.suppress_notifications;
        let queue = &mut inner.queues[usize::from(q)];
        let entry = queue.device + 4 + 8 * u64::from(queue.used_idx % queue.size);
        mem.write_u32(entry, id);
        mem.write_u32(entry + 4, len);
        queue.used_idx = queue.used_idx.wrapping_add(1);
        mem.write_u16(queue.device, u16::from(suppress));
        mem.write_u16(queue.device + 2, queue.used_idx);
    }

    /// Sets `used.idx` of queue `q` to any value (fault injection).
    pub fn set_used_idx(&self, q: u16, idx: u16) {
        let mut inner = self.0.borrow_mut();
        let mem = inner.mem.clone();
        let queue = &mut inner.queues[usize::from(q)];
        queue.used_idx = idx;
        mem.write_u16(queue.device + 2, idx);
    }

    /// Delivers `frame` into the next receive buffer; false if the driver
    /// has none posted (the frame is lost, as on a real link).
    pub fn receive_frame(&self, frame: &[u8]) -> bool {
        let Some(buf) = self.pop_avail(0) else { return false };
        let mut inner = self.0.borrow_mut();
        if !buf.writable || (buf.len as usize) < NET_HDR_LEN + frame.len() {
            inner.violation(format!("rx buffer {buf:?} unusable for a {}-byte frame", frame.len()));
            drop(inner);
            self.push_used(0, u32::from(buf.id), 0);
            return false;
        }
        let mem = inner.mem.clone();
        drop(inner);
        let mut header = [0u8; NET_HDR_LEN];
        header[10] = 1; // num_buffers
        mem.write_bytes(buf.addr, &header);
        mem.write_bytes(buf.addr + NET_HDR_LEN as u64, frame);
        self.push_used(0, u32::from(buf.id), (NET_HDR_LEN + frame.len()) as u32);
        true
    }

    /// Takes every frame the driver queued for sending, returning each
    /// buffer through the used ring (unless `complete` is false: then the
    /// buffers stay with the device, for [`push_used`](Self::push_used)).
    pub fn transmit_frames_with(&self, complete: bool) -> Vec<(u16, Vec<u8>)> {
        let mut frames = Vec::new();
        while let Some(buf) = self.pop_avail(1) {
            let mem = self.0.borrow().mem.clone();
            if buf.writable || (buf.len as usize) < NET_HDR_LEN {
                self.0.borrow_mut().violation(format!("tx buffer {buf:?} malformed"));
            } else {
                let mut header = [0u8; NET_HDR_LEN];
                mem.read_bytes(buf.addr, &mut header);
                if header != [0; NET_HDR_LEN] {
                    self.0.borrow_mut().violation(format!("tx header {header:?} asks for an offload"));
                }
                let mut frame = vec![0u8; buf.len as usize - NET_HDR_LEN];
                mem.read_bytes(buf.addr + NET_HDR_LEN as u64, &mut frame);
                frames.push((buf.id, frame));
            }
            if complete {
                self.push_used(1, u32::from(buf.id), 0);
            }
        }
        frames
    }

    /// [`transmit_frames_with`](Self::transmit_frames_with)`(true)`, frames only.
    pub fn transmit_frames(&self) -> Vec<Vec<u8>> {
        self.transmit_frames_with(true).into_iter().map(|(_, f)| f).collect()
    }
}

impl Transport for MockDevice {
    fn read_common_u8(&self, offset: u16) -> u8 {
        let inner = self.0.borrow();
        match offset {
            common::DEVICE_STATUS => inner.status,
            common::CONFIG_GENERATION => inner.generation,
            _ => 0xff,
        }
    }

    fn read_common_u16(&self, offset: u16) -> u16 {
        let inner = self.0.borrow();
        let q = inner.queues.get(usize::from(inner.queue_select));
        match offset {
            common::NUM_QUEUES => inner.config.num_queues,
            common::QUEUE_SELECT => inner.queue_select,
            common::QUEUE_SIZE => q.map_or(0, |q| q.size),
            common::QUEUE_ENABLE => q.map_or(0, |q| u16::from(q.enabled)),
            common::QUEUE_NOTIFY_OFF => q.map_or(0, |q| q.notify_off),
            _ => 0xffff,
        }
    }

    fn read_common_u32(&self, offset: u16) -> u32 {
        let inner = self.0.borrow();
        match offset {
            common::DEVICE_FEATURE => match inner.device_feature_select {
                0 => inner.config.offered_features as u32,
                1 => (inner.config.offered_features >> 32) as u32,
                _ => 0,
            },
            common::DEVICE_FEATURE_SELECT => inner.device_feature_select,
            common::DRIVER_FEATURE_SELECT => inner.driver_feature_select,
            _ => 0xffff_ffff,
        }
    }

    fn write_common_u8(&self, offset: u16, value: u8) {
        let mut inner = self.0.borrow_mut();
        match offset {
            common::DEVICE_STATUS => inner.set_status(value),
            _ => inner.violation(format!("8-bit write to common config {offset:#x}")),
        }
    }

    fn write_common_u16(&self, offset: u16, value: u16) {
        let mut inner = self.0.borrow_mut();
        match offset {
            common::QUEUE_SELECT => inner.queue_select = value,
            common::QUEUE_SIZE | common::QUEUE_ENABLE => inner.queue_write(offset, u32::from(value)),
            common::MSIX_CONFIG | common::QUEUE_MSIX_VECTOR => {}
            _ => inner.violation(format!("16-bit write to common config {offset:#x}")),
        }
    }

    fn write_common_u32(&self, offset: u16, value: u32) {
        let mut inner = self.0.borrow_mut();
        match offset {
            common::DEVICE_FEATURE_SELECT => inner.device_feature_select = value,
            common::DRIVER_FEATURE_SELECT => inner.driver_feature_select = value,
            common::DRIVER_FEATURE => {
                if inner.status & status::FEATURES_OK != 0 {
                    inner.violation(String::from("features written after FEATURES_OK"));
                }
                let shift = match inner.driver_feature_select {
                    0 => 0,
                    1 => 32,
                    _ => return,
                };
                inner.driver_features = (inner.driver_features & !(0xffff_ffffu64 << shift)) | u64::from(value) << shift;
            }
            o if (common::QUEUE_DESC..common::QUEUE_DEVICE + 8).contains(&o) => inner.queue_write(o, value),
            _ => inner.violation(format!("32-bit write to common config {offset:#x}")),
        }
    }

    fn notify_off_multiplier(&self) -> u32 {
        self.0.borrow().config.notify_off_multiplier
    }

    fn notify_len(&self) -> u32 {
        let inner = self.0.borrow();
        u32::from(inner.config.num_queues) * inner.config.notify_off_multiplier.max(2)
    }

    fn notify(&self, offset: u32, value: u16) {
        let mut inner = self.0.borrow_mut();
        let mult = inner.config.notify_off_multiplier;
        match inner.queues.get_mut(usize::from(value)) {
            Some(q) if u32::from(q.notify_off) * mult == offset => q.notifications += 1,
            _ => inner.violation(format!("notify of queue {value} at offset {offset}")),
        }
    }

    fn read_device_u8(&self, offset: u16) -> u8 {
        let inner = self.0.borrow();
        match offset {
            0..=5 => inner.config.mac[usize::from(offset)],
            _ => 0xff,
        }
    }

    fn read_device_u16(&self, offset: u16) -> u16 {
        let inner = self.0.borrow();
        match offset {
            6 => u16::from(inner.config.link_up),
            _ => 0xffff,
        }
    }
}
