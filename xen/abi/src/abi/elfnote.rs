//! ELF note types from `public/elfnote.h`.

/// Owner name of Xen's ELF notes.
pub const XEN_ELFNOTE_NAME: &[u8; 4] = b"Xen\0";

/// Physical address of the 32-bit PVH entry point.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
