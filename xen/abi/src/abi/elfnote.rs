//! ELF note types from `public/elfnote.h`.

/// Owner name of Xen's ELF notes.
pub const XEN_ELFNOTE_NAME: &[u8; 4] = b"Xen\0";

/// Physical address of the 32-bit PVH entry point.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

/// PV: virtual address of the entry point.
pub const XEN_ELFNOTE_ENTRY: u32 = 1;
/// PV: virtual address of the page the domain builder fills with
/// hypercall stubs.
pub const XEN_ELFNOTE_HYPERCALL_PAGE: u32 = 2;
/// PV: virtual address the image's pseudo-physical 0 is mapped at.
pub const XEN_ELFNOTE_VIRT_BASE: u32 = 3;
/// PV: `virt_base` minus the address the image's ELF physical addresses
/// count from.
pub const XEN_ELFNOTE_PADDR_OFFSET: u32 = 4;
/// PV: "xen-3.0", the only interface version loaders accept.
pub const XEN_ELFNOTE_XEN_VERSION: u32 = 5;
pub const XEN_ELFNOTE_GUEST_OS: u32 = 6;
/// PV: "generic", the loader that needs no Linux-specific knowledge.
pub const XEN_ELFNOTE_LOADER: u32 = 8;
/// PV: the features the guest supports (`!` before one it requires).
pub const XEN_ELFNOTE_FEATURES: u32 = 10;
