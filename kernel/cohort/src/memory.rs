//! Physical memory: the frame bitmap over the memory map, the guard pages,
//! and the kernel heap (`#[global_allocator]`) carved out of it.

use crate::arch::guest::without_interrupts;
use crate::arch::{boot, gdt, paging};
use cohort_boot::frames::{FrameBitmap, FRAME_SIZE};
use cohort_boot::memmap::MemoryMap;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use linked_list_allocator::Heap;

/// The bitmap covers the identity map: 4 GiB = 2^20 frames, 128 KiB of .bss.
const BITMAP_WORDS: usize = (paging::IDENTITY_MAP_END / FRAME_SIZE / 64) as usize;
const MIB: u64 = 1 << 20;
/// Low memory holds the loader's tables and legacy ROM: never handed out.
const LOW_MEMORY_END: u64 = MIB;

static FRAMES: spin::Once<spin::Mutex<FrameBitmap<'static>>> = spin::Once::new();

extern "C" {
    static __image_start: u8;
    static __image_end: u8;
}

pub fn image_range() -> (u64, u64) {
    ((&raw const __image_start) as u64, (&raw const __image_end) as u64)
}

/// Guard pages, by name, for the fault report.
pub fn guard_pages() -> [(&'static str, u64); 2 + gdt::IST_COUNT] {
    let mut guards = [("", 0); 2 + gdt::IST_COUNT];
    guards[0] = ("null page", 0);
    guards[1] = ("boot stack", boot::boot_stack_guard_addr());
    let names = ["IST1 (exceptions) stack", "IST2 (double fault) stack", "IST3 (NMI/MC) stack", "IST4 (IRQ) stack"];
    for (i, name) in names.into_iter().enumerate() {
        guards[2 + i] = (name, gdt::ist_stack(i).0);
    }
    guards
}

#[derive(Clone, Copy, Debug)]
pub struct HeapRegion {
    pub heap_base: u64,
    pub heap_size: u64,
}

/// `reserved`: a range beyond the image that holds something already (PV's
/// bootstrap area).
pub fn init(memmap: &MemoryMap, reserved: Option<(u64, u64)>) -> Result<HeapRegion, &'static str> {
    let frames = FRAMES.call_once(|| {
        static mut WORDS: [u64; BITMAP_WORDS] = [0; BITMAP_WORDS];
        // SAFETY: call_once runs this once, so this is the only reference.
        let words = unsafe { core::slice::from_raw_parts_mut((&raw mut WORDS).cast::<u64>(), BITMAP_WORDS) };
        let mut frames = FrameBitmap::new(words);
        for region in memmap.ram() {
            frames.add_free(region.base, region.end());
        }
        frames.reserve(0, LOW_MEMORY_END);
        let (start, end) = image_range();
        frames.reserve(start, end);
        if let Some((start, end)) = reserved {
            frames.reserve(start, end);
        }
        spin::Mutex::new(frames)
    });

    for (_, addr) in guard_pages() {
        paging::unmap(addr, alloc_frame).map_err(|_| "cannot unmap a guard page")?;
    }

    // A quarter of free memory, 1..=256 MiB: room for buffers outside the heap.
    let free = frames.lock().free_frames() as u64 * FRAME_SIZE;
    let heap_size = (free / 4).clamp(MIB, 256 * MIB) / FRAME_SIZE * FRAME_SIZE;
    let heap_base =
        frames.lock().alloc_contiguous(heap_size / FRAME_SIZE, 1).ok_or("not enough contiguous memory for the heap")?;
    // SAFETY: the frames were just allocated for the heap alone, are
    // identity mapped RAM, and the heap is initialised once (init runs once).
    unsafe { HEAP.0.lock().init(heap_base as *mut u8, heap_size as usize) };
    Ok(HeapRegion { heap_base, heap_size })
}

/// One 4 KiB frame, identity mapped, not zeroed.
pub fn alloc_frame() -> Option<u64> {
    without_interrupts(|| FRAMES.get()?.lock().alloc())
}

/// `count` physically contiguous frames, identity mapped, not zeroed.
pub fn alloc_contiguous(count: u64) -> Option<u64> {
    without_interrupts(|| FRAMES.get()?.lock().alloc_contiguous(count, 1))
}

pub fn free_frame(addr: u64) -> Result<(), cohort_boot::frames::FreeError> {
    without_interrupts(|| match FRAMES.get() {
        Some(frames) => frames.lock().free(addr),
        None => Err(cohort_boot::frames::FreeError::NotAllocated(addr)),
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    pub heap_used: usize,
    pub heap_size: usize,
    pub frames_allocated: usize,
    pub frames_free: usize,
}

pub fn usage() -> Usage {
    without_interrupts(|| {
        let heap = HEAP.0.lock();
        let (frames_allocated, frames_free) = FRAMES.get().map_or((0, 0), |f| {
            let f = f.lock();
            (f.allocated_frames(), f.free_frames())
        });
        Usage { heap_used: heap.used(), heap_size: heap.size(), frames_allocated, frames_free }
    })
}

struct KernelHeap(spin::Mutex<Heap>);

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(spin::Mutex::new(Heap::empty()));

// SAFETY: allocation goes through linked_list_allocator, which returns
// blocks that fit `layout` and do not overlap; interrupts are off while the
// lock is held so a handler can never deadlock on it.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        without_interrupts(|| self.0.lock().allocate_first_fit(layout).map_or(core::ptr::null_mut(), NonNull::as_ptr))
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(ptr) = NonNull::new(ptr) {
            // SAFETY: GlobalAlloc's contract: ptr came from `alloc` with this layout.
            without_interrupts(|| unsafe { self.0.lock().deallocate(ptr, layout) });
        }
    }
}
