//! The PCI side of virtio 1.x: locating the virtio structures through the
//! vendor-specific capabilities in configuration space, and decoding BARs.
//! Pure functions over configuration-space bytes and BAR values, so the
//! kernel does only the port I/O.

/// Red Hat / virtio vendor id.
pub const VIRTIO_VENDOR_ID: u16 = 0x1af4;
/// Modern (virtio 1.x) devices: 0x1040 + virtio device id.
pub const MODERN_DEVICE_ID_BASE: u16 = 0x1040;
/// virtio-net, modern only (`disable-legacy=on` in QEMU).
pub const VIRTIO_NET_DEVICE_ID: u16 = MODERN_DEVICE_ID_BASE + 1;
/// Transitional virtio-net (legacy + modern).
pub const VIRTIO_NET_TRANSITIONAL_DEVICE_ID: u16 = 0x1000;

const STATUS: usize = 0x06;
const STATUS_CAP_LIST: u16 = 1 << 4;
const CAP_POINTER: usize = 0x34;
const CAP_ID_VENDOR: u8 = 0x09;
/// Capabilities cannot start in the standard header.
const FIRST_CAP: usize = 0x40;
/// Enough for every distinct capability in 256 bytes: more means a loop.
const MAX_CAPS: usize = 48;

/// `cfg_type` of `struct virtio_pci_cap`.
pub mod cfg_type {
    pub const COMMON: u8 = 1;
    pub const NOTIFY: u8 = 2;
    pub const ISR: u8 = 3;
    pub const DEVICE: u8 = 4;
    pub const PCI: u8 = 5;
}

/// Length of `struct virtio_pci_common_cfg` as of virtio 1.0.
pub const COMMON_CFG_MIN_LEN: u32 = 0x38;

/// Where one virtio structure lives: `length` bytes at `offset` in BAR `bar`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub bar: u8,
    pub offset: u32,
    pub length: u32,
}

impl Region {
    /// End offset in the BAR, without overflow.
    pub fn end(&self) -> u64 {
        u64::from(self.offset) + u64::from(self.length)
    }
}

/// The virtio structures a modern device declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioCaps {
    pub common: Region,
    pub notify: Region,
    pub notify_off_multiplier: u32,
    pub isr: Option<Region>,
    pub device: Option<Region>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapError {
    /// Configuration space shorter than the standard 256 bytes.
    Truncated,
    /// The status register says there is no capability list.
    NoCapabilityList,
    /// A capability pointer into the header or past the end.
    BadPointer(u8),
    /// The list does not end.
    Loop,
    /// The common configuration capability is missing (a legacy-only
    /// device) or shorter than virtio 1.0's structure.
    NoCommonConfig,
    /// The notification capability is missing.
    NoNotify,
}

impl core::fmt::Display for CapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CapError::Truncated => write!(f, "configuration space shorter than 256 bytes"),
            CapError::NoCapabilityList => write!(f, "no capability list"),
            CapError::BadPointer(p) => write!(f, "capability pointer {p:#x} out of range"),
            CapError::Loop => write!(f, "capability list loops"),
            CapError::NoCommonConfig => write!(f, "no virtio common configuration capability"),
            CapError::NoNotify => write!(f, "no virtio notification capability"),
        }
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Walks the capability list of a function's first 256 configuration
/// bytes and keeps the first usable instance of each virtio structure
/// (virtio 1.x, 4.1.4): capabilities naming a BAR above 5, or too short
/// for their type, are skipped.
pub fn parse_virtio_caps(config: &[u8]) -> Result<VirtioCaps, CapError> {
    if config.len() < 256 {
        return Err(CapError::Truncated);
    }
    if le16(config, STATUS) & STATUS_CAP_LIST == 0 {
        return Err(CapError::NoCapabilityList);
    }
    let (mut common, mut notify, mut isr, mut device) = (None, None, None, None);
    let mut pointer = config[CAP_POINTER] & 0xfc;
    let mut seen = 0;
    while pointer != 0 {
        let at = usize::from(pointer);
        // Two bytes for id and next at least; a vendor cap reads 16 or 20.
        if at < FIRST_CAP || at + 2 > 256 {
            return Err(CapError::BadPointer(pointer));
        }
        seen += 1;
        if seen > MAX_CAPS {
            return Err(CapError::Loop);
        }
        let (id, next) = (config[at], config[at + 1] & 0xfc);
        if id == CAP_ID_VENDOR && at + 16 <= 256 {
            let cap_len = usize::from(config[at + 2]);
            let kind = config[at + 3];
            let bar = config[at + 4];
            let region = Region { bar, offset: le32(config, at + 8), length: le32(config, at + 12) };
            let usable = bar <= 5 && cap_len >= 16;
            match kind {
                cfg_type::COMMON if usable && common.is_none() && region.length >= COMMON_CFG_MIN_LEN => common = Some(region),
                cfg_type::NOTIFY if usable && notify.is_none() && cap_len >= 20 && at + 20 <= 256 => {
                    notify = Some((region, le32(config, at + 16)))
                }
                cfg_type::ISR if usable && isr.is_none() => isr = Some(region),
                cfg_type::DEVICE if usable && device.is_none() => device = Some(region),
                _ => {}
            }
        }
        pointer = next;
    }
    let common = common.ok_or(CapError::NoCommonConfig)?;
    let (notify, notify_off_multiplier) = notify.ok_or(CapError::NoNotify)?;
    Ok(VirtioCaps { common, notify, notify_off_multiplier, isr, device })
}

/// A decoded base address register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bar {
    Memory { base: u64, size: u64, is_64: bool, prefetchable: bool },
    Io { port: u32, size: u32 },
}

/// True if a memory BAR's low dword says it takes two BAR slots.
pub fn bar_is_64(raw: u32) -> bool {
    raw & 1 == 0 && (raw >> 1) & 3 == 2
}

/// Decodes a BAR from its value (`raw`, and `raw_high` for the upper half
/// of a 64-bit BAR) and what it read back after all ones were written
/// (`mask`, `mask_high`). `None`: the BAR is not implemented.
pub fn decode_bar(raw: u32, raw_high: u32, mask: u32, mask_high: u32) -> Option<Bar> {
    if raw & 1 == 1 {
        let bits = mask & !0x3;
        if bits == 0 {
            return None;
        }
        // I/O BARs decode 16 (x86) or 32 bits; unimplemented upper bits read 0.
        let bits = if bits & 0xffff_0000 == 0 { bits | 0xffff_0000 } else { bits };
        return Some(Bar::Io { port: raw & !0x3, size: (!bits).wrapping_add(1) });
    }
    let is_64 = bar_is_64(raw);
    let prefetchable = raw & 0x8 != 0;
    let (base, bits) = if is_64 {
        (u64::from(raw & !0xf) | u64::from(raw_high) << 32, u64::from(mask & !0xf) | u64::from(mask_high) << 32)
    } else {
        (u64::from(raw & !0xf), u64::from(mask & !0xf) | 0xffff_ffff_0000_0000)
    };
    if bits == 0 || bits == 0xffff_ffff_0000_0000 {
        return None;
    }
    Some(Bar::Memory { base, size: (!bits).wrapping_add(1), is_64, prefetchable })
}
