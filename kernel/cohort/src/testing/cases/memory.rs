use crate::ensure;
use crate::memory;
use crate::testing::Outcome;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

pub fn heap_alloc() -> Outcome {
    let before = memory::usage();
    {
        let boxed = Box::new(0x1234_5678_u64);
        ensure!(*boxed == 0x1234_5678, "box holds {:#x}", *boxed);
        let mut v: Vec<u32> = (0..100_000).collect();
        v.retain(|x| x % 3 == 0);
        ensure!(v.len() == 33_334 && v[100] == 300, "vec has {} items, v[100]={}", v.len(), v[100]);
        let mut map = BTreeMap::new();
        for i in 0..1000u32 {
            map.insert(i.wrapping_mul(2_654_435_761), i);
        }
        ensure!(map.len() == 1000, "map has {} entries", map.len());
        let during = memory::usage();
        ensure!(during.heap_used > before.heap_used + 100_000, "heap use did not grow: {before:?} -> {during:?}");
        // A large block, page-aligned, written end to end.
        let layout = core::alloc::Layout::from_size_align(1 << 20, 4096).map_err(|e| alloc::format!("{e}"))?;
        // SAFETY: layout is non-zero-sized; the block is freed below.
        let p = unsafe { alloc::alloc::alloc(layout) };
        ensure!(!p.is_null() && (p as usize).is_multiple_of(4096), "1 MiB aligned alloc gave {p:?}");
        // SAFETY: p is valid for 1 MiB and freed with the same layout.
        unsafe {
            core::ptr::write_bytes(p, 0xa5, 1 << 20);
            ensure!(*p.add((1 << 20) - 1) == 0xa5, "last byte not written");
            alloc::alloc::dealloc(p, layout);
        }
    }
    let after = memory::usage();
    ensure!(after.heap_used == before.heap_used, "heap leaked: {} -> {} bytes", before.heap_used, after.heap_used);
    Ok(())
}

pub fn frame_alloc() -> Outcome {
    let before = memory::usage();
    let mut frames = Vec::new();
    for _ in 0..64 {
        let frame = memory::alloc_frame().ok_or("out of frames")?;
        ensure!(frame % 4096 == 0 && frame >= 1 << 20, "bad frame {frame:#x}");
        let (img_start, img_end) = memory::image_range();
        ensure!(frame + 4096 <= img_start || frame >= img_end, "frame {frame:#x} inside the kernel image");
        // The frame is usable RAM: write and read back.
        // SAFETY: the frame was just allocated to us and is identity mapped.
        unsafe {
            core::ptr::write_volatile(frame as *mut u64, frame);
            ensure!(core::ptr::read_volatile(frame as *const u64) == frame, "frame {frame:#x} did not hold data");
        }
        frames.push(frame);
    }
    let mut sorted = frames.clone();
    sorted.sort_unstable();
    sorted.dedup();
    ensure!(sorted.len() == 64, "duplicate frames handed out");
    ensure!(memory::usage().frames_allocated == before.frames_allocated + 64, "allocation count off");
    for frame in &frames {
        memory::free_frame(*frame).map_err(|e| alloc::format!("free {frame:#x}: {e:?}"))?;
    }
    ensure!(memory::free_frame(frames[0]).is_err(), "double free was accepted");
    ensure!(memory::usage().frames_allocated == before.frames_allocated, "frames leaked");
    Ok(())
}

/// Our own memcpy/memmove/memset/memcmp, on overlapping and odd ranges.
pub fn mem_functions() -> Outcome {
    let mut buf: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    // Overlap, destination above the source: must copy backwards.
    buf.copy_within(10..510, 13);
    ensure!(buf[13..513].iter().enumerate().all(|(i, &b)| b == ((10 + i) % 256) as u8), "memmove up corrupted");
    let mut buf: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    buf.copy_within(13..513, 10);
    ensure!(buf[10..510].iter().enumerate().all(|(i, &b)| b == ((13 + i) % 256) as u8), "memmove down corrupted");
    let mut dst = [0u8; 333];
    dst.copy_from_slice(&buf[1..334]);
    ensure!(dst[..] == buf[1..334], "memcpy differs");
    dst.fill(0x5a);
    ensure!(dst.iter().all(|&b| b == 0x5a), "memset missed bytes");
    let (a, b) = (alloc::vec![1u8, 2, 3, 4], alloc::vec![1u8, 2, 9, 0]);
    use core::cmp::Ordering::{Equal, Greater, Less};
    let orders = (a.as_slice().cmp(b.as_slice()), b.as_slice().cmp(a.as_slice()), a.as_slice().cmp(&a.clone()));
    ensure!(orders == (Less, Greater, Equal), "memcmp ordering wrong: {orders:?}");
    ensure!(a.as_slice().cmp(&[][..]) == core::cmp::Ordering::Greater, "compare with empty wrong");
    Ok(())
}
