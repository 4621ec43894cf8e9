//! virtio-net on plain QEMU: finds the device on PCI, maps the virtio
//! structures in its BARs and hands the `virtio` crate the two things it
//! needs, with the only `unsafe` of the driver:
//!
//! - [`FrameDma`]: DMA memory = identity-mapped 4 KiB frames from
//!   [`crate::memory::alloc_frame`] (bus address == physical == virtual);
//!   every access is checked to lie in a frame it handed out;
//! - [`MmioTransport`]: volatile MMIO into the common, notification and
//!   device configuration structures, bounds-checked against each
//!   structure's declared length.
//!
//! The driver polls (no interrupts: INTx is disabled in the PCI command
//! register and the rings ask for none). Call `iface.poll(now, &mut driver,
//! &mut sockets)` in a loop; nothing else needs calling.

use crate::arch::paging::IDENTITY_MAP_END;
use crate::pci::{self, Function};
use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::String;
use cohort_boot::memmap::MemoryMap;
use core::cell::RefCell;
use netdev::NetDevice;
use smoltcp::phy::{Device, DeviceCapabilities};
use smoltcp::time::Instant;
use virtio::net::{Config, VirtioNet};
use virtio::pci::{Bar, Region, VIRTIO_NET_DEVICE_ID, VIRTIO_NET_TRANSITIONAL_DEVICE_ID, VIRTIO_VENDOR_ID};
use virtio::{DmaMemory, Transport, PAGE_SIZE};

type Virtio = VirtioNet<FrameDma, MmioTransport>;

/// The driver as the kernel holds it: a `smoltcp::phy::Device` and a
/// [`NetDevice`] (a type of this crate, since both traits and `VirtioNet`
/// are foreign).
pub struct Driver(Virtio);

/// virtio device id of a network card (subsystem id of a transitional one).
const VIRTIO_ID_NET: u16 = 1;

/// Identity-mapped frames, handed to the device for DMA.
pub struct FrameDma {
    pages: RefCell<BTreeSet<u64>>,
}

impl FrameDma {
    pub fn new() -> FrameDma {
        FrameDma { pages: RefCell::new(BTreeSet::new()) }
    }

    /// `len` bytes at `addr`, aligned to `align`, inside one of our pages:
    /// the pointer. Anything else is a driver bug.
    fn check(&self, addr: u64, len: usize, align: u64) -> *mut u8 {
        let page = addr & !(PAGE_SIZE - 1);
        let inside = len == 0 || (addr + len as u64 - 1) & !(PAGE_SIZE - 1) == page;
        assert!(
            addr & (align - 1) == 0 && inside && self.pages.borrow().contains(&page),
            "virtio DMA access outside its pages: {len} bytes at {addr:#x}"
        );
        addr as *mut u8
    }
}

impl Default for FrameDma {
    fn default() -> FrameDma {
        FrameDma::new()
    }
}

impl DmaMemory for FrameDma {
    fn alloc_page(&self) -> Option<u64> {
        let page = crate::memory::alloc_frame()?;
        if page + PAGE_SIZE > IDENTITY_MAP_END {
            let _ = crate::memory::free_frame(page);
            return None;
        }
        self.pages.borrow_mut().insert(page);
        Some(page)
    }

    fn free_page(&self, addr: u64) {
        if self.pages.borrow_mut().remove(&addr) {
            let _ = crate::memory::free_frame(addr);
        }
    }

    fn read_u16(&self, addr: u64) -> u16 {
        let p = self.check(addr, 2, 2);
        // SAFETY: `check` proved p aligned, inside a RAM frame this
        // allocator owns, identity mapped; the device may write it, hence
        // volatile.
        unsafe { p.cast::<u16>().read_volatile() }
    }

    fn read_u32(&self, addr: u64) -> u32 {
        let p = self.check(addr, 4, 4);
        // SAFETY: as in read_u16.
        unsafe { p.cast::<u32>().read_volatile() }
    }

    fn write_u16(&self, addr: u64, value: u16) {
        let p = self.check(addr, 2, 2);
        // SAFETY: as in read_u16; the frame is ours, no Rust reference to
        // it exists.
        unsafe { p.cast::<u16>().write_volatile(value) }
    }

    fn write_u32(&self, addr: u64, value: u32) {
        let p = self.check(addr, 4, 4);
        // SAFETY: as in write_u16.
        unsafe { p.cast::<u32>().write_volatile(value) }
    }

    fn write_u64(&self, addr: u64, value: u64) {
        let p = self.check(addr, 8, 8);
        // SAFETY: as in write_u16.
        unsafe { p.cast::<u64>().write_volatile(value) }
    }

    fn read_bytes(&self, addr: u64, buf: &mut [u8]) {
        let p = self.check(addr, buf.len(), 1);
        // SAFETY: `check` proved the range inside one of our frames, which
        // never overlaps `buf` (a heap or stack slice). The device finished
        // writing before it published the used entry, which the driver read
        // before this, with a fence in between.
        unsafe { core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) }
    }

    fn write_bytes(&self, addr: u64, data: &[u8]) {
        let p = self.check(addr, data.len(), 1);
        // SAFETY: as in read_bytes; the device reads the buffer only after
        // the driver publishes it, behind a fence.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) }
    }
}

/// One virtio structure in MMIO space.
#[derive(Clone, Copy, Debug)]
struct Mmio {
    base: u64,
    len: u64,
}

impl Mmio {
    const NONE: Mmio = Mmio { base: 0, len: 0 };

    /// The pointer for a `size`-byte access at `offset`, if it is inside
    /// and naturally aligned.
    fn at(&self, offset: u64, size: u64) -> Option<u64> {
        (offset & (size - 1) == 0 && offset + size <= self.len).then(|| self.base + offset)
    }

    fn read<T: Copy>(&self, offset: u64, outside: T) -> T {
        match self.at(offset, core::mem::size_of::<T>() as u64) {
            // SAFETY: `probe` checked that [base, base + len) lies inside
            // the device's memory BAR, below 4 GiB (identity mapped) and
            // outside RAM; the access is aligned and inside.
            Some(p) => unsafe { (p as *const T).read_volatile() },
            None => outside,
        }
    }

    fn write<T: Copy>(&self, offset: u64, value: T) {
        if let Some(p) = self.at(offset, core::mem::size_of::<T>() as u64) {
            // SAFETY: as in read.
            unsafe { (p as *mut T).write_volatile(value) }
        }
    }
}

/// The virtio PCI structures of one device, by volatile MMIO.
pub struct MmioTransport {
    common: Mmio,
    notify: Mmio,
    notify_off_multiplier: u32,
    device: Mmio,
}

impl Transport for MmioTransport {
    fn read_common_u8(&self, offset: u16) -> u8 {
        self.common.read(offset.into(), 0xff)
    }

    fn read_common_u16(&self, offset: u16) -> u16 {
        self.common.read(offset.into(), 0xffff)
    }

    fn read_common_u32(&self, offset: u16) -> u32 {
        self.common.read(offset.into(), 0xffff_ffff)
    }

    fn write_common_u8(&self, offset: u16, value: u8) {
        self.common.write(offset.into(), value)
    }

    fn write_common_u16(&self, offset: u16, value: u16) {
        self.common.write(offset.into(), value)
    }

    fn write_common_u32(&self, offset: u16, value: u32) {
        self.common.write(offset.into(), value)
    }

    fn notify_off_multiplier(&self) -> u32 {
        self.notify_off_multiplier
    }

    fn notify_len(&self) -> u32 {
        self.notify.len as u32
    }

    fn notify(&self, offset: u32, value: u16) {
        self.notify.write(offset.into(), value)
    }

    fn read_device_u8(&self, offset: u16) -> u8 {
        self.device.read(offset.into(), 0xff)
    }

    fn read_device_u16(&self, offset: u16) -> u16 {
        self.device.read(offset.into(), 0xffff)
    }
}

fn is_virtio_net(f: &Function) -> bool {
    f.vendor_id == VIRTIO_VENDOR_ID
        && (f.device_id == VIRTIO_NET_DEVICE_ID
            || (f.device_id == VIRTIO_NET_TRANSITIONAL_DEVICE_ID && f.subsystem_id == VIRTIO_ID_NET))
}

/// True if [start, end) overlaps RAM in the boot memory map.
fn overlaps_ram(ram: &MemoryMap, start: u64, end: u64) -> bool {
    ram.ram().any(|r| r.base < end && start < r.end())
}

/// Where a virtio structure is in memory, checked: inside a memory BAR that
/// is assigned, below 4 GiB and clear of RAM (`ram`, the boot memory map).
/// `bars` caches each BAR's decoding (sizing a BAR briefly turns its
/// decoding off).
fn map(f: &Function, region: Region, bars: &mut [Option<Option<Bar>>; 6], ram: &MemoryMap) -> Result<Mmio, String> {
    let index = usize::from(region.bar);
    let bar = *bars[index].get_or_insert_with(|| {
        let bar = pci::bar(f.addr, region.bar);
        if let Some(Bar::Memory { base, size, .. }) = bar {
            log::debug!("virtio-net {}: BAR {index}: {size:#x} bytes at {base:#x}", f.addr);
        }
        bar
    });
    let bar = bar.ok_or_else(|| format!("BAR {index} is not implemented"))?;
    let Bar::Memory { base, size, .. } = bar else {
        return Err(format!("BAR {index} is an I/O BAR ({bar:?}); only memory BARs are supported"));
    };
    if region.end() > size {
        return Err(format!("structure {region:?} runs past BAR {index} ({size:#x} bytes)"));
    }
    let start = base + u64::from(region.offset);
    let end = start + u64::from(region.length);
    if base == 0 || end > IDENTITY_MAP_END || overlaps_ram(ram, start, end) {
        return Err(format!(
            "BAR {index} at {base:#x} ({size:#x} bytes) is unassigned, above the 4 GiB identity map or over RAM"
        ));
    }
    Ok(Mmio { base: start, len: u64::from(region.length) })
}

fn open(f: &Function, ram: &MemoryMap) -> Result<Driver, String> {
    let config = pci::config_space(f.addr);
    let caps = virtio::pci::parse_virtio_caps(&config).map_err(|e| format!("{e}"))?;
    let mut bars = [None; 6];
    let transport = MmioTransport {
        common: map(f, caps.common, &mut bars, ram)?,
        notify: map(f, caps.notify, &mut bars, ram)?,
        notify_off_multiplier: caps.notify_off_multiplier,
        device: match caps.device {
            Some(region) => map(f, region, &mut bars, ram)?,
            None => Mmio::NONE,
        },
    };
    log::debug!("virtio-net {}: {caps:?}", f.addr);
    let command = pci::command(f.addr);
    pci::set_command(
        f.addr,
        (command & !pci::COMMAND_IO) | pci::COMMAND_MEMORY | pci::COMMAND_BUS_MASTER | pci::COMMAND_INTX_DISABLE,
    );
    VirtioNet::new(FrameDma::new(), transport, Config::default()).map(Driver).map_err(|e| format!("{e}"))
}

/// The first virtio-net device on PCI, initialised and ready to poll;
/// `None` (with a log line saying why) if there is none or it cannot be
/// brought up. `ram` is the boot memory map (a BAR over RAM is refused).
/// Call it on plain QEMU only (not on Xen).
pub fn probe(ram: &MemoryMap) -> Option<Driver> {
    let functions = pci::enumerate();
    for f in &functions {
        log::debug!("pci {f}");
    }
    let Some(f) = functions.iter().find(|f| is_virtio_net(f)) else {
        log::info!("virtio-net: no device among {} PCI functions", functions.len());
        return None;
    };
    match open(f, ram) {
        Ok(Driver(driver)) => {
            let m = driver.mac();
            let (rxq, txq) = driver.queue_sizes();
            log::info!(
                "virtio-net {}: MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}, features {:#x}, queues rx {rxq} tx {txq}, link {}",
                f.addr,
                m[0],
                m[1],
                m[2],
                m[3],
                m[4],
                m[5],
                driver.features(),
                if driver.link_up() { "up" } else { "down" }
            );
            let mac = alloc::format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]);
            crate::println!("{}", figures::Event::NetDevice { device: "virtio-net", mac: &mac, link_up: driver.link_up() });
            Some(Driver(driver))
        }
        Err(e) => {
            log::warn!("virtio-net {}: {e}", f.addr);
            None
        }
    }
}

impl Device for Driver {
    type RxToken<'a>
        = <Virtio as Device>::RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = <Virtio as Device>::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.0.receive(timestamp)
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        self.0.transmit(timestamp)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.0.capabilities()
    }
}

impl NetDevice for Driver {
    fn mac(&self) -> [u8; 6] {
        self.0.mac()
    }

    fn kind(&self) -> &'static str {
        "virtio"
    }

    fn frames_moved(&mut self) -> Option<u64> {
        let s = self.0.stats();
        Some(s.tx_frames + s.rx_frames)
    }

    fn counters(&self) -> String {
        let s = self.0.stats();
        format!(
            "virtio-net: rx {} frames {} bytes ({} dropped), tx {} frames {} bytes ({} dropped), \
             notifications rx {} tx {} ({} suppressed), used-ring errors {}",
            s.rx_frames,
            s.rx_bytes,
            s.rx_dropped,
            s.tx_frames,
            s.tx_bytes,
            s.tx_dropped,
            s.rx_notifications,
            s.tx_notifications,
            s.notifications_suppressed,
            s.used_ring_errors
        )
    }

    fn shutdown(&mut self) -> Result<String, String> {
        if self.0.shutdown() {
            Ok(String::from("virtio-net reset, DMA pages freed"))
        } else {
            Err(String::from("virtio-net did not complete its reset: DMA pages kept"))
        }
    }
}
