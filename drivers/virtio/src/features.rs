//! Feature bits, device status bits and the layout of the common
//! configuration structure (virtio 1.x, 2.1, 2.2, 4.1.4.3, 5.1.3).

/// Device status bits (2.1).
pub mod status {
    pub const ACKNOWLEDGE: u8 = 1;
    pub const DRIVER: u8 = 2;
    pub const DRIVER_OK: u8 = 4;
    pub const FEATURES_OK: u8 = 8;
    pub const DEVICE_NEEDS_RESET: u8 = 0x40;
    pub const FAILED: u8 = 0x80;
}

/// Offsets in `struct virtio_pci_common_cfg`.
pub mod common {
    pub const DEVICE_FEATURE_SELECT: u16 = 0x00;
    pub const DEVICE_FEATURE: u16 = 0x04;
    pub const DRIVER_FEATURE_SELECT: u16 = 0x08;
    pub const DRIVER_FEATURE: u16 = 0x0c;
    pub const MSIX_CONFIG: u16 = 0x10;
    pub const NUM_QUEUES: u16 = 0x12;
    pub const DEVICE_STATUS: u16 = 0x14;
    pub const CONFIG_GENERATION: u16 = 0x15;
    pub const QUEUE_SELECT: u16 = 0x16;
    pub const QUEUE_SIZE: u16 = 0x18;
    pub const QUEUE_MSIX_VECTOR: u16 = 0x1a;
    pub const QUEUE_ENABLE: u16 = 0x1c;
    pub const QUEUE_NOTIFY_OFF: u16 = 0x1e;
    pub const QUEUE_DESC: u16 = 0x20;
    pub const QUEUE_DRIVER: u16 = 0x28;
    pub const QUEUE_DEVICE: u16 = 0x30;
}

/// "No MSI-X vector" for `msix_config` and `queue_msix_vector`.
pub const NO_VECTOR: u16 = 0xffff;

// Device-independent feature bits (6).
pub const VIRTIO_F_INDIRECT_DESC: u64 = 1 << 28;
pub const VIRTIO_F_EVENT_IDX: u64 = 1 << 29;
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;
pub const VIRTIO_F_ACCESS_PLATFORM: u64 = 1 << 33;
pub const VIRTIO_F_RING_PACKED: u64 = 1 << 34;

// virtio-net feature bits (5.1.3).
pub const VIRTIO_NET_F_CSUM: u64 = 1 << 0;
pub const VIRTIO_NET_F_GUEST_CSUM: u64 = 1 << 1;
pub const VIRTIO_NET_F_MTU: u64 = 1 << 3;
pub const VIRTIO_NET_F_MAC: u64 = 1 << 5;
pub const VIRTIO_NET_F_GUEST_TSO4: u64 = 1 << 7;
pub const VIRTIO_NET_F_HOST_TSO4: u64 = 1 << 11;
pub const VIRTIO_NET_F_MRG_RXBUF: u64 = 1 << 15;
pub const VIRTIO_NET_F_STATUS: u64 = 1 << 16;
pub const VIRTIO_NET_F_CTRL_VQ: u64 = 1 << 17;
pub const VIRTIO_NET_F_MQ: u64 = 1 << 22;

/// Every feature this driver can use; anything else offered is declined
/// (in particular every checksum and segmentation offload, so frames in
/// both directions carry complete checksums and smoltcp computes and
/// verifies them all).
pub const NET_SUPPORTED: u64 = VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NegotiationError {
    /// The device is legacy-only: no `VIRTIO_F_VERSION_1`.
    NoVersion1,
}

/// The driver's feature set: what it supports and the device offers.
/// `VIRTIO_F_VERSION_1` is required.
pub fn negotiate(offered: u64, supported: u64) -> Result<u64, NegotiationError> {
    if offered & VIRTIO_F_VERSION_1 == 0 {
        return Err(NegotiationError::NoVersion1);
    }
    Ok(offered & supported)
}
