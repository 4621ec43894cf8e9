//! Hypercall numbers, sub-operations and argument structures, laid out as
//! in the public headers (x86_64). Field names follow the headers.

pub type DomId = u16;
pub const DOMID_SELF: DomId = 0x7ff0;

pub mod nr {
    pub const SET_TRAP_TABLE: u32 = 0;
    pub const MMU_UPDATE: u32 = 1;
    pub const FPU_TASKSWITCH: u32 = 5;
    pub const UPDATE_VA_MAPPING: u32 = 14;
    pub const MEMORY_OP: u32 = 12;
    pub const XEN_VERSION: u32 = 17;
    pub const CONSOLE_IO: u32 = 18;
    pub const GRANT_TABLE_OP: u32 = 20;
    pub const VCPU_OP: u32 = 24;
    pub const SCHED_OP: u32 = 29;
    pub const EVENT_CHANNEL_OP: u32 = 32;
    pub const HVM_OP: u32 = 34;
}

pub mod xenver {
    pub const VERSION: u32 = 0;
    pub const EXTRAVERSION: u32 = 1;
}

pub mod xenmem {
    pub const ADD_TO_PHYSMAP: u32 = 7;
    pub const MEMORY_MAP: u32 = 9;
    pub const MAPSPACE_SHARED_INFO: u32 = 0;
    pub const MAPSPACE_GRANT_TABLE: u32 = 1;
}

pub mod hvmop {
    pub const GET_PARAM: u32 = 1;
    pub const PARAM_STORE_PFN: u32 = 1;
    pub const PARAM_STORE_EVTCHN: u32 = 2;
    pub const PARAM_CONSOLE_PFN: u32 = 17;
    pub const PARAM_CONSOLE_EVTCHN: u32 = 18;
}

pub mod evtchnop {
    pub const BIND_INTERDOMAIN: u32 = 0;
    pub const BIND_VIRQ: u32 = 1;
    pub const CLOSE: u32 = 3;
    pub const SEND: u32 = 4;
    pub const STATUS: u32 = 5;
    pub const ALLOC_UNBOUND: u32 = 6;
    pub const UNMASK: u32 = 9;
    pub const VIRQ_TIMER: u32 = 0;
}

pub mod gnttabop {
    pub const MAP_GRANT_REF: u32 = 0;
    pub const UNMAP_GRANT_REF: u32 = 1;
    pub const COPY: u32 = 5;
    pub const QUERY_SIZE: u32 = 6;
    pub const SETUP_TABLE: u32 = 2;
    pub const GTF_PERMIT_ACCESS: u16 = 1;
    pub const GTF_READONLY: u16 = 1 << 2;
    pub const GTF_READING: u16 = 1 << 3;
    pub const GTF_WRITING: u16 = 1 << 4;
    pub const GNTMAP_HOST_MAP: u32 = 1 << 1;
    pub const GNTMAP_READONLY: u32 = 1 << 2;
    pub const GNTCOPY_SOURCE_GREF: u16 = 1 << 0;
    pub const GNTCOPY_DEST_GREF: u16 = 1 << 1;
    /// Size of a v1 grant entry: flags u16, domid u16, frame u32.
    pub const ENTRY_V1_SIZE: usize = 8;
    /// Refs 0..8 are reserved for the toolstack (xenstore, console).
    pub const NR_RESERVED_ENTRIES: u32 = 8;
}

pub mod vcpuop {
    pub const STOP_PERIODIC_TIMER: u32 = 7;
    pub const SET_SINGLESHOT_TIMER: u32 = 8;
    pub const STOP_SINGLESHOT_TIMER: u32 = 9;
    pub const SSHOTTMR_FUTURE: u32 = 1;
}

pub mod schedop {
    pub const YIELD: u32 = 0;
    pub const BLOCK: u32 = 1;
    pub const SHUTDOWN: u32 = 2;
    pub const POLL: u32 = 3;
    pub const SHUTDOWN_POWEROFF: u32 = 0;
    pub const SHUTDOWN_CRASH: u32 = 3;
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct XenAddToPhysmap {
    pub domid: DomId,
    pub size: u16,
    pub space: u32,
    pub idx: u64,
    pub gpfn: u64,
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct XenMemoryMap {
    pub nr_entries: u32,
    pub buffer: u64,
}

/// One E820 entry as XENMEM_memory_map returns it (packed, 20 bytes).
pub const E820_ENTRY_SIZE: usize = 20;

#[repr(C)]
#[derive(Debug, Default)]
pub struct XenHvmParam {
    pub domid: DomId,
    pub pad: u16,
    pub index: u32,
    pub value: u64,
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct EvtchnAllocUnbound {
    pub dom: DomId,
    pub remote_dom: DomId,
    pub port: u32,
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct EvtchnBindInterdomain {
    pub remote_dom: DomId,
    pub remote_port: u32,
    pub local_port: u32,
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct EvtchnBindVirq {
    pub virq: u32,
    pub vcpu: u32,
    pub port: u32,
}

/// `evtchn_close`, `evtchn_send` and `evtchn_unmask` are all one port.
#[repr(C)]
#[derive(Debug, Default)]
pub struct EvtchnPort {
    pub port: u32,
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct EvtchnStatus {
    pub dom: DomId,
    pub port: u32,
    pub status: u32,
    pub vcpu: u32,
    pub u: [u32; 2],
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct GnttabMapGrantRef {
    pub host_addr: u64,
    pub flags: u32,
    pub gref: u32,
    pub dom: DomId,
    pub status: i16,
    pub handle: u32,
    pub dev_bus_addr: u64,
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct GnttabUnmapGrantRef {
    pub host_addr: u64,
    pub dev_bus_addr: u64,
    pub handle: u32,
    pub status: i16,
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct GnttabQuerySize {
    pub dom: DomId,
    pub nr_frames: u32,
    pub max_nr_frames: u32,
    pub status: i16,
}

/// `gnttab_setup_table`: grows our table to `nr_frames` and lists its
/// frames (machine frames, for a PV guest) in `frame_list`.
#[repr(C)]
#[derive(Debug, Default)]
pub struct GnttabSetupTable {
    pub dom: DomId,
    pub nr_frames: u32,
    pub status: i16,
    pub frame_list: u64,
}

/// One side of a `gnttab_copy`: a grant ref (with `GNTCOPY_*_GREF`) or
/// our own frame, plus the domain and the offset in the page.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct GnttabCopyPtr {
    /// `u.ref` or `u.gmfn` (a union of grant_ref_t and xen_pfn_t).
    pub gref_or_gmfn: u64,
    pub domid: DomId,
    pub offset: u16,
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct GnttabCopy {
    pub source: GnttabCopyPtr,
    pub dest: GnttabCopyPtr,
    pub len: u16,
    pub flags: u16,
    pub status: i16,
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct SchedPoll {
    /// Guest handle: address of an array of ports.
    pub ports: u64,
    pub nr_ports: u32,
    pub timeout: u64,
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct VcpuSetSingleshotTimer {
    pub timeout_abs_ns: u64,
    pub flags: u32,
}

#[repr(C)]
#[derive(Debug, Default)]
pub struct SchedShutdown {
    pub reason: u32,
}

/// One entry of a PV trap table (`struct trap_info`); a zero `address`
/// ends the table.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct TrapInfo {
    pub vector: u8,
    /// Bits 0-1: the lowest privilege that may raise it with `int` (Xen
    /// lets a PV kernel do so only at 1 or more); bit 2: mask events on
    /// entry.
    pub flags: u8,
    pub cs: u16,
    pub address: u64,
}

/// One `mmu_update` request: `*ptr = val`, `ptr` a machine address with
/// the request type in its low two bits.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct MmuUpdate {
    pub ptr: u64,
    pub val: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    // Sizes and offsets checked against the C layouts in the 4.17 headers.
    #[test]
    fn layouts_match_the_headers() {
        assert_eq!(size_of::<XenAddToPhysmap>(), 24);
        assert_eq!(offset_of!(XenAddToPhysmap, idx), 8);
        assert_eq!(size_of::<XenMemoryMap>(), 16);
        assert_eq!(size_of::<XenHvmParam>(), 16);
        assert_eq!(offset_of!(XenHvmParam, value), 8);
        assert_eq!(size_of::<EvtchnAllocUnbound>(), 8);
        assert_eq!(size_of::<EvtchnBindInterdomain>(), 12);
        assert_eq!(offset_of!(EvtchnBindInterdomain, remote_port), 4);
        assert_eq!(size_of::<EvtchnBindVirq>(), 12);
        assert_eq!(size_of::<EvtchnStatus>(), 24);
        assert_eq!(size_of::<GnttabMapGrantRef>(), 32);
        assert_eq!(offset_of!(GnttabMapGrantRef, dom), 16);
        assert_eq!(offset_of!(GnttabMapGrantRef, status), 18);
        assert_eq!(offset_of!(GnttabMapGrantRef, handle), 20);
        assert_eq!(size_of::<GnttabUnmapGrantRef>(), 24);
        assert_eq!(offset_of!(GnttabUnmapGrantRef, status), 20);
        assert_eq!(size_of::<GnttabQuerySize>(), 16);
        assert_eq!(size_of::<VcpuSetSingleshotTimer>(), 16);
        assert_eq!(size_of::<GnttabCopyPtr>(), 16);
        assert_eq!(size_of::<GnttabCopy>(), 40);
        assert_eq!(offset_of!(GnttabCopy, len), 32);
        assert_eq!(offset_of!(GnttabCopy, status), 36);
        assert_eq!(size_of::<SchedPoll>(), 24);
        assert_eq!(size_of::<MmuUpdate>(), 16);
        assert_eq!(size_of::<GnttabSetupTable>(), 24);
        assert_eq!(offset_of!(GnttabSetupTable, nr_frames), 4);
        assert_eq!(offset_of!(GnttabSetupTable, status), 8);
        assert_eq!(offset_of!(GnttabSetupTable, frame_list), 16);
        assert_eq!(size_of::<TrapInfo>(), 16);
        assert_eq!(offset_of!(TrapInfo, cs), 2);
        assert_eq!(offset_of!(TrapInfo, address), 8);
    }
}
