//! virtio 1.x ("modern") devices over PCI, as seen by a driver that reaches
//! the device only through two small traits:
//!
//! - [`DmaMemory`]: pages the device can reach by bus address (in Cohort,
//!   identity-mapped frames, so bus address == physical == virtual), read
//!   and written by address;
//! - [`Transport`]: the virtio PCI common configuration, the notification
//!   area and the device-specific configuration (in Cohort, volatile MMIO
//!   into the BARs that [`pci::VirtioCaps`] locates).
//!
//! On top of them: split virtqueues ([`queue`]), the device status
//! handshake and feature negotiation ([`features`], [`net`]), and virtio-net
//! as a [`smoltcp::phy::Device`] ([`net::VirtioNet`]). Everything here is
//! pure and safe, and is tested on the host against [`mock`], an in-memory
//! device that plays the other side of the rings and can misbehave.
//!
//! The driver polls: it asks the device for no interrupts
//! (`VIRTQ_AVAIL_F_NO_INTERRUPT`) and needs none.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod features;
#[cfg(any(test, feature = "mock"))]
pub mod mock;
pub mod net;
pub mod pci;
pub mod queue;
#[cfg(test)]
mod tests;

/// The unit of DMA allocation.
pub const PAGE_SIZE: u64 = 4096;

/// Memory the device can reach by DMA, addressed by bus address.
///
/// Accesses never cross a page boundary and are naturally aligned; an
/// implementation may check that (and that the page is one it handed out)
/// and panic otherwise: that is a driver bug, never a device's doing.
pub trait DmaMemory {
    /// One page ([`PAGE_SIZE`] bytes, page aligned, contents unspecified),
    /// or `None` when memory is exhausted.
    fn alloc_page(&self) -> Option<u64>;
    /// Returns a page from [`alloc_page`](Self::alloc_page). The device must
    /// no longer use it (the driver resets the device first).
    fn free_page(&self, addr: u64);
    fn read_u16(&self, addr: u64) -> u16;
    fn read_u32(&self, addr: u64) -> u32;
    fn write_u16(&self, addr: u64, value: u16);
    fn write_u32(&self, addr: u64, value: u32);
    fn write_u64(&self, addr: u64, value: u64);
    fn read_bytes(&self, addr: u64, buf: &mut [u8]);
    fn write_bytes(&self, addr: u64, data: &[u8]);
    /// Orders every access before it against every access after it, as
    /// seen by the device (stores before loads included). The default is a
    /// sequentially consistent fence, which is `mfence` on x86.
    fn fence(&self) {
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
    }
}

/// The register side of a virtio PCI device: the common configuration
/// structure (`struct virtio_pci_common_cfg`, offsets in
/// [`features::common`]), the notification structure and the
/// device-specific configuration. Offsets are relative to each structure;
/// an implementation ignores writes and returns all-ones for reads outside
/// the structure as the device declared it.
pub trait Transport {
    fn read_common_u8(&self, offset: u16) -> u8;
    fn read_common_u16(&self, offset: u16) -> u16;
    fn read_common_u32(&self, offset: u16) -> u32;
    fn write_common_u8(&self, offset: u16, value: u8);
    fn write_common_u16(&self, offset: u16, value: u16);
    fn write_common_u32(&self, offset: u16, value: u32);
    /// `notify_off_multiplier` from the notification capability.
    fn notify_off_multiplier(&self) -> u32;
    /// Length of the notification structure, to check a queue's doorbell.
    fn notify_len(&self) -> u32;
    /// Writes `value` (the queue index) as 16 bits at `offset` in the
    /// notification structure.
    fn notify(&self, offset: u32, value: u16);
    fn read_device_u8(&self, offset: u16) -> u8;
    fn read_device_u16(&self, offset: u16) -> u16;
}
