//! Hypercalls through the hypercall page: the only hypercall assembly in
//! Cohort. The typed wrappers are safe where the hypercall can only read or
//! write the argument structure it is given; those that change the guest's
//! physical memory map are `unsafe`, with the contract spelled out.
#![allow(unsafe_code)]

use crate::abi::ops::*;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

/// Physical (= virtual, identity map) address of the hypercall page; 0
/// until `install`.
static PAGE: AtomicU64 = AtomicU64::new(0);

/// A negative errno from Xen (`public/errno.h`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i64);

impl Errno {
    pub const EPERM: Errno = Errno(-1);
    pub const ENOENT: Errno = Errno(-2);
    pub const EAGAIN: Errno = Errno(-11);
    pub const ENOMEM: Errno = Errno(-12);
    pub const EBUSY: Errno = Errno(-16);
    pub const EINVAL: Errno = Errno(-22);
    pub const ENOSPC: Errno = Errno(-28);
    pub const ENOSYS: Errno = Errno(-38);

    fn name(self) -> &'static str {
        match self.0 {
            -1 => "EPERM",
            -2 => "ENOENT",
            -3 => "ESRCH",
            -11 => "EAGAIN",
            -12 => "ENOMEM",
            -13 => "EACCES",
            -14 => "EFAULT",
            -16 => "EBUSY",
            -17 => "EEXIST",
            -22 => "EINVAL",
            -28 => "ENOSPC",
            -38 => "ENOSYS",
            _ => "errno",
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

pub type Result<T> = core::result::Result<T, Errno>;

/// A grant-table operation fails either as a hypercall (errno) or in its
/// per-operation status (`GNTST_*`, e.g. -9 bad page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantError {
    Hypercall(Errno),
    Status(i16),
}

impl fmt::Display for GrantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrantError::Hypercall(e) => write!(f, "{e}"),
            GrantError::Status(s) => write!(f, "GNTST {s}"),
        }
    }
}

fn check(ret: i64) -> Result<i64> {
    if ret < 0 {
        Err(Errno(ret))
    } else {
        Ok(ret)
    }
}

/// Asks Xen to fill the page at `page_paddr` with hypercall stubs, through
/// the MSR that CPUID leaf `base + 2` names.
///
/// # Safety
/// `page_paddr` is a 4 KiB-aligned, identity-mapped page that nothing else
/// uses, executable, for the rest of the kernel's life; `base` is Xen's
/// CPUID base leaf.
pub unsafe fn install(base: u32, page_paddr: u64) {
    let leaf = core::arch::x86_64::__cpuid(base + 2);
    let msr = leaf.ebx;
    // SAFETY: Xen's CPUID leaf names this MSR as the hypercall page MSR;
    // writing it makes Xen write stubs into the caller-provided page.
    unsafe {
        core::arch::asm!("wrmsr", in("ecx") msr, in("eax") page_paddr as u32, in("edx") (page_paddr >> 32) as u32,
            options(nostack, preserves_flags));
    }
    PAGE.store(page_paddr, Ordering::Release);
}

/// Uses the hypercall page the PV domain builder filled (the image's
/// `XEN_ELFNOTE_HYPERCALL_PAGE`): a PV guest cannot write the MSR.
///
/// # Safety
/// `page` is the mapped, executable page the note names.
pub unsafe fn install_pv(page: u64) {
    PAGE.store(page, Ordering::Release);
}

pub fn installed() -> bool {
    PAGE.load(Ordering::Acquire) != 0
}

/// # Safety
/// The arguments must be valid for hypercall `nr`: pointers refer to
/// structures of the right type that Xen may read and write.
unsafe fn call(nr: u32, a1: u64, a2: u64, a3: u64) -> i64 {
    // SAFETY: the caller's; a hypercall of three arguments ignores r10.
    unsafe { call4(nr, a1, a2, a3, 0) }
}

/// As `call`, with a fourth argument (in `r10`).
///
/// # Safety
/// As for `call`.
unsafe fn call4(nr: u32, a1: u64, a2: u64, a3: u64, a4: u64) -> i64 {
    let page = PAGE.load(Ordering::Acquire);
    if page == 0 {
        return Errno::ENOSYS.0;
    }
    let entry = page + u64::from(nr) * 32;
    let ret: i64;
    // SAFETY: `entry` is the stub for `nr` in the page Xen filled; the
    // caller vouches for the arguments. The stub clobbers at most rax and,
    // by the hypercall ABI, the argument registers.
    unsafe {
        core::arch::asm!("call {entry}", entry = in(reg) entry,
            inlateout("rdi") a1 => _, inlateout("rsi") a2 => _, inlateout("rdx") a3 => _, inlateout("r10") a4 => _,
            lateout("rax") ret, lateout("rcx") _, lateout("r11") _, lateout("r8") _);
    }
    ret
}

fn ptr<T>(arg: &mut T) -> u64 {
    arg as *mut T as u64
}

// ---- safe wrappers: Xen reads/writes only the structure given ----

/// (major, minor).
pub fn xen_version() -> Result<(u16, u16)> {
    // SAFETY: XENVER_version takes no buffer.
    let v = check(unsafe { call(nr::XEN_VERSION, u64::from(xenver::VERSION), 0, 0) })?;
    Ok(((v >> 16) as u16, v as u16))
}

/// The extra version string (e.g. ".7" or "-unstable"), NUL-padded.
pub fn xen_extraversion() -> Result<[u8; 16]> {
    let mut buf = [0u8; 16];
    // SAFETY: XENVER_extraversion writes at most 16 bytes into `buf`.
    check(unsafe { call(nr::XEN_VERSION, u64::from(xenver::EXTRAVERSION), buf.as_mut_ptr() as u64, 0) })?;
    Ok(buf)
}

pub fn hvm_get_param(index: u32) -> Result<u64> {
    let mut p = XenHvmParam { domid: DOMID_SELF, pad: 0, index, value: 0 };
    // SAFETY: HVMOP_get_param reads and writes only `p`.
    check(unsafe { call(nr::HVM_OP, u64::from(hvmop::GET_PARAM), ptr(&mut p), 0) })?;
    Ok(p.value)
}

/// Fills `buf` with E820 entries (20 bytes each); returns how many.
pub fn memory_map(buf: &mut [u8]) -> Result<usize> {
    let mut map = XenMemoryMap { nr_entries: (buf.len() / E820_ENTRY_SIZE) as u32, buffer: buf.as_mut_ptr() as u64 };
    // SAFETY: Xen writes at most nr_entries entries into `buf`.
    check(unsafe { call(nr::MEMORY_OP, u64::from(xenmem::MEMORY_MAP), ptr(&mut map), 0) })?;
    Ok(map.nr_entries as usize)
}

fn evtchn_op<T>(cmd: u32, arg: &mut T) -> Result<()> {
    // SAFETY: every EVTCHNOP we use takes one of the repr(C) structures in
    // abi::ops by pointer and touches nothing else; the caller picks `T`
    // matching `cmd`, and a mismatch can only produce a wrong answer from
    // Xen, not a memory error in the guest: Xen writes within sizeof(struct),
    // and each of our structures is at least as large as the one for its
    // command (checked in the abi layout tests).
    check(unsafe { call(nr::EVENT_CHANNEL_OP, u64::from(cmd), ptr(arg), 0) }).map(drop)
}

pub fn alloc_unbound(remote: DomId) -> Result<u32> {
    let mut op = EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: remote, port: 0 };
    evtchn_op(evtchnop::ALLOC_UNBOUND, &mut op)?;
    Ok(op.port)
}

pub fn bind_interdomain(remote: DomId, remote_port: u32) -> Result<u32> {
    let mut op = EvtchnBindInterdomain { remote_dom: remote, remote_port, local_port: 0 };
    evtchn_op(evtchnop::BIND_INTERDOMAIN, &mut op)?;
    Ok(op.local_port)
}

pub fn bind_virq(virq: u32, vcpu: u32) -> Result<u32> {
    let mut op = EvtchnBindVirq { virq, vcpu, port: 0 };
    evtchn_op(evtchnop::BIND_VIRQ, &mut op)?;
    Ok(op.port)
}

pub fn evtchn_send(port: u32) -> Result<()> {
    evtchn_op(evtchnop::SEND, &mut EvtchnPort { port })
}

pub fn evtchn_close(port: u32) -> Result<()> {
    evtchn_op(evtchnop::CLOSE, &mut EvtchnPort { port })
}

pub fn evtchn_unmask(port: u32) -> Result<()> {
    evtchn_op(evtchnop::UNMASK, &mut EvtchnPort { port })
}

/// EVTCHNSTAT_* of one of our ports.
pub fn evtchn_status(port: u32) -> Result<u32> {
    let mut op = EvtchnStatus { dom: DOMID_SELF, port, ..Default::default() };
    evtchn_op(evtchnop::STATUS, &mut op)?;
    Ok(op.status)
}

pub fn grant_query_size() -> core::result::Result<(u32, u32), GrantError> {
    let mut op = GnttabQuerySize { dom: DOMID_SELF, ..Default::default() };
    // SAFETY: GNTTABOP_query_size reads and writes one structure (count 1).
    check(unsafe { call(nr::GRANT_TABLE_OP, u64::from(gnttabop::QUERY_SIZE), ptr(&mut op), 1) })
        .map_err(GrantError::Hypercall)?;
    if op.status != 0 {
        return Err(GrantError::Status(op.status));
    }
    Ok((op.nr_frames, op.max_nr_frames))
}

pub fn set_singleshot_timer(vcpu: u32, timeout_abs_ns: u64) -> Result<()> {
    let mut op = VcpuSetSingleshotTimer { timeout_abs_ns, flags: 0 };
    // SAFETY: VCPUOP_set_singleshot_timer reads only `op`.
    check(unsafe { call(nr::VCPU_OP, u64::from(vcpuop::SET_SINGLESHOT_TIMER), u64::from(vcpu), ptr(&mut op)) }).map(drop)
}

pub fn stop_periodic_timer(vcpu: u32) -> Result<()> {
    // SAFETY: takes no argument structure.
    check(unsafe { call(nr::VCPU_OP, u64::from(vcpuop::STOP_PERIODIC_TIMER), u64::from(vcpu), 0) }).map(drop)
}

/// Blocks until an event is pending for this vCPU.
pub fn sched_block() -> Result<()> {
    // SAFETY: takes no argument structure.
    check(unsafe { call(nr::SCHED_OP, u64::from(schedop::BLOCK), 0, 0) }).map(drop)
}

pub fn sched_yield() -> Result<()> {
    // SAFETY: takes no argument structure.
    check(unsafe { call(nr::SCHED_OP, u64::from(schedop::YIELD), 0, 0) }).map(drop)
}

/// Blocks until one of `ports` is pending or Xen system time reaches
/// `timeout_abs_ns` (0: no timeout).
pub fn sched_poll(ports: &mut [u32], timeout_abs_ns: u64) -> Result<()> {
    let mut op = SchedPoll { ports: ports.as_mut_ptr() as u64, nr_ports: ports.len() as u32, timeout: timeout_abs_ns };
    // SAFETY: SCHEDOP_poll reads `op` and the `ports` array it points at.
    check(unsafe { call(nr::SCHED_OP, u64::from(schedop::POLL), ptr(&mut op), 0) }).map(drop)
}

/// Grows our grant table to `frames.len()` frames and fills `frames` with
/// their frame numbers (machine frames for a PV guest, which maps them
/// itself).
pub fn grant_setup_table(frames: &mut [u64]) -> core::result::Result<(), GrantError> {
    let nr_frames = u32::try_from(frames.len()).map_err(|_| GrantError::Hypercall(Errno::EINVAL))?;
    let mut op = GnttabSetupTable { dom: DOMID_SELF, nr_frames, status: 0, frame_list: frames.as_mut_ptr() as u64 };
    // SAFETY: GNTTABOP_setup_table reads `op` and writes at most nr_frames
    // entries into `frames` (count 1: one structure).
    check(unsafe { call(nr::GRANT_TABLE_OP, u64::from(gnttabop::SETUP_TABLE), ptr(&mut op), 1) })
        .map_err(GrantError::Hypercall)?;
    if op.status != 0 {
        return Err(GrantError::Status(op.status));
    }
    Ok(())
}

/// Copies between granted pages and our own frames without mapping them.
/// Each element's `status` is set; the call fails only as a whole.
///
/// # Safety
/// Where a side names one of our own frames (`gmfn`), Xen writes there:
/// the frame must be ours and hold nothing Rust code relies on.
pub unsafe fn grant_copy(ops: &mut [GnttabCopy]) -> Result<()> {
    // SAFETY: the caller vouches for our frames; Xen reads/writes the array.
    check(unsafe { call(nr::GRANT_TABLE_OP, u64::from(gnttabop::COPY), ops.as_mut_ptr() as u64, ops.len() as u64) }).map(drop)
}

/// Returns only if Xen refuses the shutdown.
pub fn sched_shutdown(reason: u32) -> Errno {
    let mut op = SchedShutdown { reason };
    // SAFETY: SCHEDOP_shutdown reads only `op`.
    Errno(unsafe { call(nr::SCHED_OP, u64::from(schedop::SHUTDOWN), ptr(&mut op), 0) })
}

// ---- unsafe wrappers: they change what guest-physical addresses hold ----

/// Maps shared_info (`space` 0) or grant-table frame `idx` (`space` 1) at
/// guest frame `gpfn`.
///
/// # Safety
/// Whatever was at `gpfn` is replaced: the frame must be one the kernel
/// owns and never uses as ordinary memory again.
pub unsafe fn add_to_physmap(space: u32, idx: u64, gpfn: u64) -> Result<()> {
    let mut op = XenAddToPhysmap { domid: DOMID_SELF, size: 0, space, idx, gpfn };
    // SAFETY: the caller owns `gpfn`; Xen reads only `op`.
    check(unsafe { call(nr::MEMORY_OP, u64::from(xenmem::ADD_TO_PHYSMAP), ptr(&mut op), 0) }).map(drop)
}

/// Maps `gref` of domain `dom` at guest-physical `host_addr`.
/// Returns the handle for unmapping.
///
/// # Safety
/// `host_addr` is page-aligned, has no RAM behind it that the kernel uses
/// (unmapping leaves it empty), and is not already mapped.
pub unsafe fn map_grant_ref(dom: DomId, gref: u32, host_addr: u64, readonly: bool) -> core::result::Result<u32, GrantError> {
    let flags = gnttabop::GNTMAP_HOST_MAP | if readonly { gnttabop::GNTMAP_READONLY } else { 0 };
    let mut op = GnttabMapGrantRef { host_addr, flags, gref, dom, ..Default::default() };
    // SAFETY: the caller vouches for host_addr; Xen reads/writes one `op`.
    check(unsafe { call(nr::GRANT_TABLE_OP, u64::from(gnttabop::MAP_GRANT_REF), ptr(&mut op), 1) })
        .map_err(GrantError::Hypercall)?;
    if op.status != 0 {
        return Err(GrantError::Status(op.status));
    }
    Ok(op.handle)
}

/// # Safety
/// `host_addr`/`handle` come from one successful `map_grant_ref`, and no
/// reference into the page outlives this call.
pub unsafe fn unmap_grant_ref(host_addr: u64, handle: u32) -> core::result::Result<(), GrantError> {
    let mut op = GnttabUnmapGrantRef { host_addr, dev_bus_addr: 0, handle, status: 0 };
    // SAFETY: as documented for the caller; Xen reads/writes one `op`.
    check(unsafe { call(nr::GRANT_TABLE_OP, u64::from(gnttabop::UNMAP_GRANT_REF), ptr(&mut op), 1) })
        .map_err(GrantError::Hypercall)?;
    if op.status != 0 {
        return Err(GrantError::Status(op.status));
    }
    Ok(())
}

// ---- PV only: the guest's own page tables, which Xen validates ----

/// Sets the page-table entry that maps virtual address `va` to `pte`
/// (0 unmaps it) and flushes that address from the TLB. The page table
/// holding the entry must exist.
///
/// # Safety
/// Nothing Rust relies on lives at `va` (or it is mapped again to the
/// same frame with compatible rights).
pub unsafe fn update_va_mapping(va: u64, pte: u64) -> Result<()> {
    // SAFETY: the caller vouches for what `va` held; Xen checks `pte`.
    check(unsafe { call(nr::UPDATE_VA_MAPPING, va, pte, crate::abi::pv::UVMF_INVLPG) }).map(drop)
}

/// Registers the PV trap table: `table` ends with an entry whose address
/// is 0 (checked: Xen would read past the slice otherwise).
///
/// # Safety
/// Every other entry's `address` is the entry point of a handler for its
/// vector, as Xen delivers it (an address in mapped memory is jumped to).
pub unsafe fn set_trap_table(table: &[TrapInfo]) -> Result<()> {
    if table.last().is_none_or(|t| t.address != 0) {
        return Err(Errno::EINVAL);
    }
    // SAFETY: Xen reads the entries up to the terminating one, inside the
    // slice; the caller vouches for the handlers.
    check(unsafe { call(nr::SET_TRAP_TABLE, table.as_ptr() as u64, 0, 0) }).map(drop)
}

/// Applies `reqs` to our page tables (each checked by Xen).
///
/// # Safety
/// Each request changes a mapping: what it unmaps or remaps must hold
/// nothing Rust relies on.
pub unsafe fn mmu_update(reqs: &mut [MmuUpdate]) -> Result<()> {
    let mut done = 0u32;
    // SAFETY: Xen reads `reqs` and writes `done`; the caller vouches for
    // the mappings.
    check(unsafe { call4(nr::MMU_UPDATE, reqs.as_mut_ptr() as u64, reqs.len() as u64, ptr(&mut done), u64::from(DOMID_SELF)) })
        .map(drop)
}
