//! What a freestanding binary must supply itself on the stock linux-gnu
//! target: the C memory functions (compiler_builtins does not provide them
//! there) and the unwinding symbols the precompiled core refers to. The
//! panic handler, which reports through the console, is in `fault`.

// The copy and fill loops are `rep movsq`/`rep stosq` for the 8-byte words
// and `rep movsb`/`rep stosb` for the rest: fast on real CPUs, 8 times fewer
// iterations where each one costs an emulated instruction (TCG, whose
// -icount virtual time the benchmarks use), and no compiler loop idiom can
// turn them back into calls to themselves.

/// # Safety
/// C `memcpy`: `dst` and `src` valid for `n` bytes and not overlapping.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract is copy_forward's.
    unsafe { copy_forward(dst, src, n) };
    dst
}

/// `rep movsq` for the n / 8 words, then `rep movsb` for the n % 8 bytes,
/// forward. Also the copy to and from other domains' memory: being inline
/// assembly (and not named memcpy), the compiler cannot split, repeat or
/// drop it.
///
/// # Safety
/// `dst` and `src` valid for `n` bytes and not overlapping.
#[inline(always)]
pub unsafe fn copy_forward(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller's contract; DF is clear, as the ABI keeps it.
    unsafe {
        core::arch::asm!(
            "mov {rest}, rcx",
            "shr rcx, 3",
            "rep movsq",
            "mov rcx, {rest}",
            "and rcx, 7",
            "rep movsb",
            rest = out(reg) _,
            inout("rdi") dst => _, inout("rsi") src => _, inout("rcx") n => _,
            options(nostack));
    }
}

/// # Safety
/// C `memmove`: `dst` and `src` valid for `n` bytes; they may overlap.
#[no_mangle]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize).wrapping_sub(src as usize) >= n {
        // dst is below src or past its end: a forward copy never reads a
        // byte it already overwrote.
        // SAFETY: as for memcpy, forward order is safe here.
        return unsafe { memcpy(dst, src, n) };
    }
    // SAFETY: the caller's contract; with DF set rep movsb copies from the
    // last byte down, which is correct when dst overlaps above src. DF is
    // cleared again as the ABI requires.
    unsafe {
        core::arch::asm!("std", "rep movsb", "cld",
            inout("rdi") dst.add(n - 1) => _, inout("rsi") src.add(n - 1) => _, inout("rcx") n => _,
            options(nostack));
    }
    dst
}

/// # Safety
/// C `memset`: `dst` valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memset(dst: *mut u8, value: i32, n: usize) -> *mut u8 {
    let word = u64::from(value as u8) * 0x0101_0101_0101_0101;
    // SAFETY: the caller's contract; rep stosq then rep stosb write exactly
    // n / 8 words and n % 8 bytes.
    unsafe {
        core::arch::asm!(
            "mov {rest}, rcx",
            "shr rcx, 3",
            "rep stosq",
            "mov rcx, {rest}",
            "and rcx, 7",
            "rep stosb",
            rest = out(reg) _,
            inout("rdi") dst => _, inout("rcx") n => _, in("rax") word,
            options(nostack));
    }
    dst
}

/// # Safety
/// C `memcmp`: `a` and `b` valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n and both are valid for n bytes.
        let (x, y) = unsafe { (a.add(i).read(), b.add(i).read()) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

/// # Safety
/// C `bcmp`: as `memcmp`, only equality matters.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}

/// Referenced by the precompiled (unwind-enabled) core; never called with
/// panic=abort.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

#[no_mangle]
pub extern "C" fn _Unwind_Resume() -> ! {
    panic!("_Unwind_Resume called with panic=abort")
}
