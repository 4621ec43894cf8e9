//! PCI configuration space through configuration mechanism #1 (ports
//! 0xCF8/0xCFC): enumeration of bus 0 and the buses behind PCI-to-PCI
//! bridges, BAR sizing, command-register control. Only the first 256 bytes
//! of each function's space are reachable this way (no ECAM), which is
//! where virtio's capabilities live.
//!
//! Used on plain QEMU only: a Xen PVH domain has no PCI bus here.

use crate::arch::guest::without_interrupts;
use alloc::vec::Vec;
use core::fmt;
use virtio::pci::{bar_is_64, decode_bar, Bar};
use x86_64::instructions::port::Port;

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;

const VENDOR_ID: u8 = 0x00;
const DEVICE_ID: u8 = 0x02;
const COMMAND: u8 = 0x04;
const REVISION_CLASS: u8 = 0x08;
const HEADER_TYPE: u8 = 0x0e;
const BAR0: u8 = 0x10;
const SUBSYSTEM_ID: u8 = 0x2e;
const SECONDARY_BUS: u8 = 0x19;

pub const COMMAND_IO: u16 = 1 << 0;
pub const COMMAND_MEMORY: u16 = 1 << 1;
pub const COMMAND_BUS_MASTER: u16 = 1 << 2;
pub const COMMAND_INTX_DISABLE: u16 = 1 << 10;

/// The address/data port pair is one shared register: one access at a time.
static LOCK: spin::Mutex<()> = spin::Mutex::new(());

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Address {
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

impl Address {
    fn config_address(&self, offset: u8) -> u32 {
        debug_assert!(self.device < 32 && self.function < 8);
        1 << 31
            | u32::from(self.bus) << 16
            | u32::from(self.device) << 11
            | u32::from(self.function) << 8
            | u32::from(offset & 0xfc)
    }
}

pub fn read_u32(addr: Address, offset: u8) -> u32 {
    without_interrupts(|| {
        let _guard = LOCK.lock();
        // SAFETY: mechanism #1 configuration cycles only read or write the
        // selected function's configuration registers; the lock keeps the
        // address and data accesses together.
        unsafe {
            Port::<u32>::new(CONFIG_ADDRESS).write(addr.config_address(offset));
            Port::<u32>::new(CONFIG_DATA).read()
        }
    })
}

pub fn read_u16(addr: Address, offset: u8) -> u16 {
    (read_u32(addr, offset) >> (8 * u32::from(offset & 2))) as u16
}

pub fn read_u8(addr: Address, offset: u8) -> u8 {
    (read_u32(addr, offset) >> (8 * u32::from(offset & 3))) as u8
}

pub fn write_u32(addr: Address, offset: u8, value: u32) {
    without_interrupts(|| {
        let _guard = LOCK.lock();
        // SAFETY: as in read_u32; what the write does to the device is the
        // caller's intent (BAR sizing, command bits).
        unsafe {
            Port::<u32>::new(CONFIG_ADDRESS).write(addr.config_address(offset));
            Port::<u32>::new(CONFIG_DATA).write(value);
        }
    })
}

/// A 16-bit write through data port 0xCFC + (offset & 2), so the other half
/// of the dword (e.g. the status register's write-1-to-clear bits next to
/// the command register) is not touched.
pub fn write_u16(addr: Address, offset: u8, value: u16) {
    without_interrupts(|| {
        let _guard = LOCK.lock();
        // SAFETY: as in write_u32, for the 16 bits at `offset`.
        unsafe {
            Port::<u32>::new(CONFIG_ADDRESS).write(addr.config_address(offset));
            Port::<u16>::new(CONFIG_DATA + u16::from(offset & 2)).write(value);
        }
    })
}

/// One function found by [`enumerate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Function {
    pub addr: Address,
    pub vendor_id: u16,
    pub device_id: u16,
    pub subsystem_id: u16,
    pub class: u8,
    pub subclass: u8,
    pub prog_if: u8,
    /// Without the multi-function bit: 0 device, 1 PCI bridge, 2 CardBus.
    pub header_type: u8,
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:04x}:{:04x} class {:02x}.{:02x}.{:02x}",
            self.addr, self.vendor_id, self.device_id, self.class, self.subclass, self.prog_if
        )
    }
}

fn function(addr: Address) -> Option<Function> {
    let vendor_id = read_u16(addr, VENDOR_ID);
    if vendor_id == 0xffff || vendor_id == 0 {
        return None;
    }
    let class = read_u32(addr, REVISION_CLASS);
    let header_type = read_u8(addr, HEADER_TYPE) & 0x7f;
    Some(Function {
        addr,
        vendor_id,
        device_id: read_u16(addr, DEVICE_ID),
        subsystem_id: if header_type == 0 { read_u16(addr, SUBSYSTEM_ID) } else { 0 },
        class: (class >> 24) as u8,
        subclass: (class >> 16) as u8,
        prog_if: (class >> 8) as u8,
        header_type,
    })
}

/// Every function on bus 0 and on the buses behind PCI-to-PCI bridges
/// (each bus scanned once, whatever the bridges claim).
pub fn enumerate() -> Vec<Function> {
    let mut found = Vec::new();
    let mut scanned = [false; 256];
    let mut buses = alloc::vec![0u8];
    while let Some(bus) = buses.pop() {
        if core::mem::replace(&mut scanned[usize::from(bus)], true) {
            continue;
        }
        for device in 0..32 {
            let Some(first) = function(Address { bus, device, function: 0 }) else { continue };
            let multi = read_u8(first.addr, HEADER_TYPE) & 0x80 != 0;
            let functions = if multi { 8 } else { 1 };
            for f in 0..functions {
                let Some(func) = (if f == 0 { Some(first) } else { function(Address { bus, device, function: f }) }) else {
                    continue;
                };
                if func.header_type == 1 {
                    let secondary = read_u8(func.addr, SECONDARY_BUS);
                    if secondary != 0 {
                        buses.push(secondary);
                    }
                }
                found.push(func);
            }
        }
    }
    found.sort_by_key(|f| f.addr);
    found
}

/// The function's first 256 configuration bytes.
pub fn config_space(addr: Address) -> [u8; 256] {
    let mut bytes = [0u8; 256];
    for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
        chunk.copy_from_slice(&read_u32(addr, (i * 4) as u8).to_le_bytes());
    }
    bytes
}

pub fn command(addr: Address) -> u16 {
    read_u16(addr, COMMAND)
}

pub fn set_command(addr: Address, value: u16) {
    write_u16(addr, COMMAND, value);
}

/// Decodes BAR `index` (0..=5) of a type-0 function, sizing it with
/// address decoding off meanwhile. `None`: not implemented (or the upper
/// half of a 64-bit BAR).
pub fn bar(addr: Address, index: u8) -> Option<Bar> {
    if index > 5 {
        return None;
    }
    let offset = BAR0 + 4 * index;
    let raw = read_u32(addr, offset);
    let is_64 = bar_is_64(raw) && index < 5;
    let command = command(addr);
    set_command(addr, command & !(COMMAND_IO | COMMAND_MEMORY));
    write_u32(addr, offset, 0xffff_ffff);
    let mask = read_u32(addr, offset);
    write_u32(addr, offset, raw);
    let (raw_high, mask_high) = if is_64 {
        let high = read_u32(addr, offset + 4);
        write_u32(addr, offset + 4, 0xffff_ffff);
        let mask_high = read_u32(addr, offset + 4);
        write_u32(addr, offset + 4, high);
        (high, mask_high)
    } else {
        (0, 0)
    };
    set_command(addr, command);
    decode_bar(raw, raw_high, mask, mask_high)
}
