//! virtio-net (virtio 1.x, 5.1) over split virtqueues, as a
//! [`smoltcp::phy::Device`].
//!
//! Queue 0 receives, queue 1 transmits. Every receive buffer (2 KiB: the
//! 12-byte header and up to 2036 bytes of frame) stays posted: a buffer
//! returned by the device is copied out and posted again. Transmit buffers
//! come from a pool and go back to it as the device completes them. Only
//! `VIRTIO_F_VERSION_1` (required), `VIRTIO_NET_F_MAC` and
//! `VIRTIO_NET_F_STATUS` are negotiated: no offloads, so every checksum is
//! computed and checked by smoltcp, and frames are at most 1514 bytes.

use crate::features::{self, common, status};
use crate::queue::{QueueAddrs, SplitQueue, Used, UsedError, MAX_QUEUE_SIZE};
use crate::{DmaMemory, Transport, PAGE_SIZE};
use alloc::vec;
use alloc::vec::Vec;
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// `struct virtio_net_hdr` with `VIRTIO_F_VERSION_1` (`num_buffers`
/// included) and without any offload.
pub const NET_HDR_LEN: usize = 12;
/// Ethernet frame without FCS, as smoltcp counts it.
pub const MTU: usize = 1514;
/// One receive or transmit buffer; two per page.
pub const BUFFER_SIZE: u32 = 2048;
pub const RX_QUEUE: u16 = 0;
pub const TX_QUEUE: u16 = 1;

const HDR_F_NEEDS_CSUM: u8 = 1;
const GSO_NONE: u8 = 0;
/// Device config: `mac[6]`, then `status` (with `VIRTIO_NET_F_STATUS`).
const CONFIG_MAC: u16 = 0;
const CONFIG_STATUS: u16 = 6;
const NET_S_LINK_UP: u16 = 1;
/// Status reads allowed for a reset to complete (QEMU needs one).
const RESET_POLLS: u32 = 100_000;

#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Upper bound on each queue's size (rounded down to a power of two,
    /// and to [`MAX_QUEUE_SIZE`]); the device's own maximum also applies.
    pub max_queue_size: u16,
    /// Used when the device does not offer `VIRTIO_NET_F_MAC`.
    pub fallback_mac: [u8; 6],
}

impl Default for Config {
    fn default() -> Config {
        Config { max_queue_size: MAX_QUEUE_SIZE, fallback_mac: [0x02, 0, 0, 0, 0, 0x01] }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// The device did not read back status 0 after a reset.
    ResetTimeout,
    /// Legacy-only device: no `VIRTIO_F_VERSION_1`.
    NoVersion1,
    /// The device cleared `FEATURES_OK`: it refuses our feature subset.
    FeaturesRejected,
    /// Fewer than the two queues virtio-net needs.
    TooFewQueues(u16),
    /// The queue's maximum size is 0.
    QueueUnavailable(u16),
    /// The queue was enabled before we set it up.
    QueueAlreadyEnabled(u16),
    /// The queue's doorbell lies outside the notification structure.
    BadNotifyOffset { queue: u16, offset: u64 },
    /// No DMA page for the rings or buffers.
    OutOfMemory,
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InitError::ResetTimeout => write!(f, "device did not complete its reset"),
            InitError::NoVersion1 => write!(f, "device does not offer VIRTIO_F_VERSION_1 (legacy only)"),
            InitError::FeaturesRejected => write!(f, "device refused the negotiated features (FEATURES_OK cleared)"),
            InitError::TooFewQueues(n) => write!(f, "device has {n} queues, virtio-net needs 2"),
            InitError::QueueUnavailable(q) => write!(f, "queue {q} is not available (size 0)"),
            InitError::QueueAlreadyEnabled(q) => write!(f, "queue {q} already enabled"),
            InitError::BadNotifyOffset { queue, offset } => {
                write!(f, "queue {queue}'s doorbell at {offset:#x} is outside the notification structure")
            }
            InitError::OutOfMemory => write!(f, "out of DMA memory"),
        }
    }
}

/// `struct virtio_net_hdr` (5.1.6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetHeader {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
    pub num_buffers: u16,
}

impl NetHeader {
    pub fn to_bytes(&self) -> [u8; NET_HDR_LEN] {
        let mut b = [0u8; NET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        for (i, v) in [self.hdr_len, self.gso_size, self.csum_start, self.csum_offset, self.num_buffers].into_iter().enumerate() {
            b[2 + 2 * i..4 + 2 * i].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    pub fn from_bytes(b: &[u8; NET_HDR_LEN]) -> NetHeader {
        let le = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        NetHeader {
            flags: b[0],
            gso_type: b[1],
            hdr_len: le(2),
            gso_size: le(4),
            csum_start: le(6),
            csum_offset: le(8),
            num_buffers: le(10),
        }
    }
}

/// Counters since initialisation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub rx_frames: u64,
    pub rx_bytes: u64,
    /// Received frames not delivered: runts, frames needing a checksum or
    /// segmentation we did not negotiate, lengths past the buffer.
    pub rx_dropped: u64,
    /// Doorbell writes for the receive queue.
    pub rx_notifications: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
    /// Frames smoltcp built that could not be sent: no free buffer at that
    /// moment, or longer than a buffer.
    pub tx_dropped: u64,
    pub tx_notifications: u64,
    /// Publications after which the device asked not to be notified.
    pub notifications_suppressed: u64,
    /// Used-ring entries that broke the rules (bad id, id not outstanding,
    /// length past the buffer, an impossible index jump): counted, dropped.
    pub used_ring_errors: u64,
}

struct Pages<'m, M: DmaMemory> {
    mem: &'m M,
    list: Vec<u64>,
}

impl<M: DmaMemory> Pages<'_, M> {
    fn alloc(&mut self) -> Result<u64, InitError> {
        let page = self.mem.alloc_page().ok_or(InitError::OutOfMemory)?;
        debug_assert_eq!(page % PAGE_SIZE, 0);
        self.list.push(page);
        Ok(page)
    }

    /// `count` buffers of [`BUFFER_SIZE`], two per page.
    fn buffers(&mut self, count: u16) -> Result<Vec<u64>, InitError> {
        let mut bufs = Vec::with_capacity(usize::from(count));
        let per_page = PAGE_SIZE / u64::from(BUFFER_SIZE);
        while bufs.len() < usize::from(count) {
            let page = self.alloc()?;
            for i in 0..per_page {
                if bufs.len() < usize::from(count) {
                    bufs.push(page + i * u64::from(BUFFER_SIZE));
                }
            }
        }
        Ok(bufs)
    }
}

struct RxPath {
    queue: SplitQueue,
    scratch: Vec<u8>,
    stats: Stats,
    broken: bool,
}

impl RxPath {
    fn repost<M: DmaMemory>(&mut self, mem: &M, addr: u64) {
        // One descriptor per buffer: the descriptor of the returned buffer
        // is free, so this cannot fail.
        let added = self.queue.add(mem, addr, BUFFER_SIZE, true);
        debug_assert!(added.is_some());
    }

    fn flush<M: DmaMemory, T: Transport>(&mut self, mem: &M, transport: &T) {
        notify(&mut self.queue, mem, transport, &mut self.stats, true);
    }

    /// The next frame worth delivering, skipping (and reposting) bad ones.
    fn next<M: DmaMemory, T: Transport>(&mut self, mem: &M, transport: &T) -> Option<Used> {
        let mut reposted = false;
        let found = loop {
            match self.queue.pop_used(mem) {
                None => break None,
                Some(Ok(used)) => {
                    let written = used.written as usize;
                    let mut header = [0u8; NET_HDR_LEN];
                    let ok = written >= NET_HDR_LEN + 14 && {
                        mem.read_bytes(used.addr, &mut header);
                        let h = NetHeader::from_bytes(&header);
                        h.gso_type == GSO_NONE && h.flags & HDR_F_NEEDS_CSUM == 0
                    };
                    if ok {
                        break Some(used);
                    }
                    self.stats.rx_dropped += 1;
                    self.repost(mem, used.addr);
                    reposted = true;
                }
                Some(Err(UsedError::TooLong { used })) => {
                    self.stats.used_ring_errors += 1;
                    self.stats.rx_dropped += 1;
                    self.repost(mem, used.addr);
                    reposted = true;
                }
                Some(Err(UsedError::IndexJump { .. })) => {
                    self.stats.used_ring_errors += 1;
                    self.broken = true;
                    break None;
                }
                Some(Err(_)) => self.stats.used_ring_errors += 1,
            }
        };
        if reposted {
            self.flush(mem, transport);
        }
        found
    }
}

struct TxPath {
    queue: SplitQueue,
    free: Vec<u64>,
    scratch: Vec<u8>,
    stats: Stats,
    broken: bool,
}

impl TxPath {
    /// Takes back the buffers the device has sent.
    fn reclaim<M: DmaMemory>(&mut self, mem: &M) {
        while let Some(result) = self.queue.pop_used(mem) {
            match result {
                Ok(used) => self.free.push(used.addr),
                Err(UsedError::TooLong { used }) => {
                    self.stats.used_ring_errors += 1;
                    self.free.push(used.addr);
                }
                Err(UsedError::IndexJump { .. }) => {
                    self.stats.used_ring_errors += 1;
                    self.broken = true;
                    return;
                }
                Err(_) => self.stats.used_ring_errors += 1,
            }
        }
    }

    fn send<M: DmaMemory, T: Transport>(&mut self, mem: &M, transport: &T, len: usize) {
        let Some(addr) = self.free.pop() else {
            self.stats.tx_dropped += 1;
            return;
        };
        mem.write_bytes(addr, &NetHeader::default().to_bytes());
        mem.write_bytes(addr + NET_HDR_LEN as u64, &self.scratch[..len]);
        // A free buffer implies a free descriptor (one each).
        let added = self.queue.add(mem, addr, (NET_HDR_LEN + len) as u32, false);
        debug_assert!(added.is_some());
        notify(&mut self.queue, mem, transport, &mut self.stats, false);
        self.stats.tx_frames += 1;
        self.stats.tx_bytes += len as u64;
    }
}

fn notify<M: DmaMemory, T: Transport>(queue: &mut SplitQueue, mem: &M, transport: &T, stats: &mut Stats, rx: bool) {
    match queue.publish(mem) {
        None => {}
        Some(true) => {
            transport.notify(queue.notify_offset(), queue.index());
            if rx {
                stats.rx_notifications += 1;
            } else {
                stats.tx_notifications += 1;
            }
        }
        Some(false) => stats.notifications_suppressed += 1,
    }
}

/// A virtio-net device, driven by polling.
pub struct VirtioNet<M: DmaMemory, T: Transport> {
    mem: M,
    transport: T,
    features: u64,
    mac: [u8; 6],
    rx: RxPath,
    tx: TxPath,
    pages: Vec<u64>,
    failed: bool,
}

fn reset<T: Transport>(transport: &T) -> bool {
    transport.write_common_u8(common::DEVICE_STATUS, 0);
    (0..RESET_POLLS).any(|_| transport.read_common_u8(common::DEVICE_STATUS) == 0)
}

fn read_features<T: Transport>(t: &T) -> u64 {
    t.write_common_u32(common::DEVICE_FEATURE_SELECT, 0);
    let low = t.read_common_u32(common::DEVICE_FEATURE);
    t.write_common_u32(common::DEVICE_FEATURE_SELECT, 1);
    let high = t.read_common_u32(common::DEVICE_FEATURE);
    u64::from(high) << 32 | u64::from(low)
}

fn write_features<T: Transport>(t: &T, features: u64) {
    t.write_common_u32(common::DRIVER_FEATURE_SELECT, 0);
    t.write_common_u32(common::DRIVER_FEATURE, features as u32);
    t.write_common_u32(common::DRIVER_FEATURE_SELECT, 1);
    t.write_common_u32(common::DRIVER_FEATURE, (features >> 32) as u32);
}

fn write_u64<T: Transport>(t: &T, offset: u16, value: u64) {
    t.write_common_u32(offset, value as u32);
    t.write_common_u32(offset + 4, (value >> 32) as u32);
}

fn setup_queue<M: DmaMemory, T: Transport>(
    t: &T,
    pages: &mut Pages<'_, M>,
    index: u16,
    max_size: u16,
) -> Result<SplitQueue, InitError> {
    t.write_common_u16(common::QUEUE_SELECT, index);
    let device_max = t.read_common_u16(common::QUEUE_SIZE);
    if device_max == 0 {
        return Err(InitError::QueueUnavailable(index));
    }
    if t.read_common_u16(common::QUEUE_ENABLE) != 0 {
        return Err(InitError::QueueAlreadyEnabled(index));
    }
    let limit = device_max.min(max_size).clamp(1, MAX_QUEUE_SIZE);
    let size = 1u16 << (15 - limit.leading_zeros());
    let offset = u64::from(t.read_common_u16(common::QUEUE_NOTIFY_OFF)) * u64::from(t.notify_off_multiplier());
    if offset + 2 > u64::from(t.notify_len()) {
        return Err(InitError::BadNotifyOffset { queue: index, offset });
    }
    let addrs = QueueAddrs { desc: pages.alloc()?, avail: pages.alloc()?, used: pages.alloc()? };
    let queue = SplitQueue::new(pages.mem, index, size, addrs, offset as u32);
    t.write_common_u16(common::QUEUE_SIZE, size);
    write_u64(t, common::QUEUE_DESC, addrs.desc);
    write_u64(t, common::QUEUE_DRIVER, addrs.avail);
    write_u64(t, common::QUEUE_DEVICE, addrs.used);
    t.write_common_u16(common::QUEUE_ENABLE, 1);
    Ok(queue)
}

impl<M: DmaMemory, T: Transport> VirtioNet<M, T> {
    /// Resets the device and brings it up (3.1.1): negotiates features,
    /// sets up both queues, posts every receive buffer, sets `DRIVER_OK`.
    /// On failure the device is left reset (or `FAILED`) and every page
    /// allocated is freed.
    pub fn new(mem: M, transport: T, config: Config) -> Result<Self, InitError> {
        let mut pages = Pages { mem: &mem, list: Vec::new() };
        match Self::bring_up(&transport, &mut pages, &config) {
            Ok((features, mac, rx, tx)) => {
                let list = core::mem::take(&mut pages.list);
                Ok(VirtioNet { mem, transport, features, mac, rx, tx, pages: list, failed: false })
            }
            Err(e) => {
                let status = transport.read_common_u8(common::DEVICE_STATUS);
                transport.write_common_u8(common::DEVICE_STATUS, status | status::FAILED);
                // Only a device known to be reset has let go of the pages.
                if reset(&transport) {
                    for page in core::mem::take(&mut pages.list) {
                        mem.free_page(page);
                    }
                }
                Err(e)
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn bring_up(t: &T, pages: &mut Pages<'_, M>, config: &Config) -> Result<(u64, [u8; 6], RxPath, TxPath), InitError> {
        if !reset(t) {
            return Err(InitError::ResetTimeout);
        }
        let mut s = status::ACKNOWLEDGE;
        t.write_common_u8(common::DEVICE_STATUS, s);
        s |= status::DRIVER;
        t.write_common_u8(common::DEVICE_STATUS, s);

        let offered = read_features(t);
        let features = features::negotiate(offered, features::NET_SUPPORTED).map_err(|_| InitError::NoVersion1)?;
        write_features(t, features);
        s |= status::FEATURES_OK;
        t.write_common_u8(common::DEVICE_STATUS, s);
        if t.read_common_u8(common::DEVICE_STATUS) & status::FEATURES_OK == 0 {
            return Err(InitError::FeaturesRejected);
        }

        let queues = t.read_common_u16(common::NUM_QUEUES);
        if queues < 2 {
            return Err(InitError::TooFewQueues(queues));
        }
        let rx_queue = setup_queue(t, pages, RX_QUEUE, config.max_queue_size)?;
        let tx_queue = setup_queue(t, pages, TX_QUEUE, config.max_queue_size)?;
        let rx_buffers = pages.buffers(rx_queue.size())?;
        let tx_buffers = pages.buffers(tx_queue.size())?;

        let mac = if features & features::VIRTIO_NET_F_MAC != 0 { read_mac(t) } else { config.fallback_mac };

        let mem = pages.mem;
        let mut rx = RxPath { queue: rx_queue, scratch: vec![0; BUFFER_SIZE as usize], stats: Stats::default(), broken: false };
        for buf in rx_buffers {
            rx.repost(mem, buf);
        }
        let tx = TxPath { queue: tx_queue, free: tx_buffers, scratch: vec![0; MTU], stats: Stats::default(), broken: false };
        s |= status::DRIVER_OK;
        t.write_common_u8(common::DEVICE_STATUS, s);
        rx.flush(mem, t);
        Ok((features, mac, rx, tx))
    }

    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The negotiated feature bits.
    pub fn features(&self) -> u64 {
        self.features
    }

    /// (receive, transmit) queue sizes.
    pub fn queue_sizes(&self) -> (u16, u16) {
        (self.rx.queue.size(), self.tx.queue.size())
    }

    /// Link state from the device configuration; always up without
    /// `VIRTIO_NET_F_STATUS`.
    pub fn link_up(&self) -> bool {
        if self.features & features::VIRTIO_NET_F_STATUS == 0 {
            return true;
        }
        self.transport.read_device_u16(CONFIG_STATUS) & NET_S_LINK_UP != 0
    }

    /// True once the device broke the used-ring rules beyond repair (or
    /// asked for a reset): the driver sends and receives nothing more.
    pub fn failed(&self) -> bool {
        self.failed
    }

    pub fn stats(&self) -> Stats {
        let (r, t) = (&self.rx.stats, &self.tx.stats);
        Stats {
            rx_frames: r.rx_frames,
            rx_bytes: r.rx_bytes,
            rx_dropped: r.rx_dropped,
            rx_notifications: r.rx_notifications,
            tx_frames: t.tx_frames,
            tx_bytes: t.tx_bytes,
            tx_dropped: t.tx_dropped,
            tx_notifications: t.tx_notifications,
            notifications_suppressed: r.notifications_suppressed + t.notifications_suppressed,
            used_ring_errors: r.used_ring_errors + t.used_ring_errors,
        }
    }

    /// Transmit buffers free right now (after taking back completed ones).
    pub fn tx_free(&mut self) -> usize {
        self.tx.reclaim(&self.mem);
        self.tx.free.len()
    }

    /// Gives up on a broken device: `FAILED` in its status, nothing more sent.
    fn check_failed(&mut self) -> bool {
        if !self.failed && (self.rx.broken || self.tx.broken) {
            self.failed = true;
            let s = self.transport.read_common_u8(common::DEVICE_STATUS);
            self.transport.write_common_u8(common::DEVICE_STATUS, s | status::FAILED);
        }
        self.failed
    }

    /// Resets the device (it stops all DMA) and frees every page; true if
    /// the device confirmed the reset (otherwise the pages are kept, as the
    /// device might still write them). The driver is inert afterwards.
    pub fn shutdown(&mut self) -> bool {
        self.failed = true;
        if !reset(&self.transport) {
            return false;
        }
        for page in core::mem::take(&mut self.pages) {
            self.mem.free_page(page);
        }
        true
    }

    /// The transport, e.g. for a caller's diagnostics.
    pub fn transport(&self) -> &T {
        &self.transport
    }
}

fn read_mac<T: Transport>(t: &T) -> [u8; 6] {
    let mut mac = [0u8; 6];
    for _ in 0..16 {
        let generation = t.read_common_u8(common::CONFIG_GENERATION);
        for (i, b) in mac.iter_mut().enumerate() {
            *b = t.read_device_u8(CONFIG_MAC + i as u16);
        }
        if t.read_common_u8(common::CONFIG_GENERATION) == generation {
            break;
        }
    }
    mac
}

impl<M: DmaMemory, T: Transport> Drop for VirtioNet<M, T> {
    fn drop(&mut self) {
        // The device may DMA until it is reset: free the pages only then,
        // and leak them if it never resets.
        if !self.pages.is_empty() {
            self.shutdown();
        }
    }
}

/// A received frame, copied out when consumed; its buffer goes back to the
/// device when the token is consumed or dropped.
pub struct RxToken<'a, M: DmaMemory, T: Transport> {
    mem: &'a M,
    transport: &'a T,
    rx: &'a mut RxPath,
    used: Used,
}

impl<M: DmaMemory, T: Transport> phy::RxToken for RxToken<'_, M, T> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let len = self.used.written as usize - NET_HDR_LEN;
        let frame = &mut self.rx.scratch[..len];
        self.mem.read_bytes(self.used.addr + NET_HDR_LEN as u64, frame);
        self.rx.stats.rx_frames += 1;
        self.rx.stats.rx_bytes += len as u64;
        f(&self.rx.scratch[..len])
    }
}

impl<M: DmaMemory, T: Transport> Drop for RxToken<'_, M, T> {
    fn drop(&mut self) {
        self.rx.repost(self.mem, self.used.addr);
        self.rx.flush(self.mem, self.transport);
    }
}

/// Room for one frame to send.
pub struct TxToken<'a, M: DmaMemory, T: Transport> {
    mem: &'a M,
    transport: &'a T,
    tx: &'a mut TxPath,
}

impl<M: DmaMemory, T: Transport> phy::TxToken for TxToken<'_, M, T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        if self.tx.scratch.len() < len {
            self.tx.scratch.resize(len, 0);
        }
        let result = f(&mut self.tx.scratch[..len]);
        if len + NET_HDR_LEN > BUFFER_SIZE as usize || self.tx.broken {
            self.tx.stats.tx_dropped += 1;
        } else {
            self.tx.reclaim(self.mem);
            self.tx.send(self.mem, self.transport, len);
        }
        result
    }
}

impl<M: DmaMemory, T: Transport> phy::Device for VirtioNet<M, T> {
    type RxToken<'a>
        = RxToken<'a, M, T>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, M, T>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        if self.check_failed() {
            return None;
        }
        let Some(used) = self.rx.next(&self.mem, &self.transport) else {
            self.check_failed();
            return None;
        };
        self.tx.reclaim(&self.mem);
        let rx = RxToken { mem: &self.mem, transport: &self.transport, rx: &mut self.rx, used };
        let tx = TxToken { mem: &self.mem, transport: &self.transport, tx: &mut self.tx };
        Some((rx, tx))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        if self.check_failed() {
            return None;
        }
        self.tx.reclaim(&self.mem);
        if self.tx.free.is_empty() {
            return None;
        }
        Some(TxToken { mem: &self.mem, transport: &self.transport, tx: &mut self.tx })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps.max_burst_size = Some(usize::from(self.tx.queue.size()));
        // No VIRTIO_NET_F_CSUM / GUEST_CSUM: smoltcp computes and verifies
        // every checksum (the default).
        caps
    }
}
