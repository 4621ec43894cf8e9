//! Test payloads: a fixed pseudo-random byte pattern, so that what comes
//! out of a transfer can be compared with what went in, and a byte that
//! moved, was lost or repeated shows (a pattern with a short period, such
//! as a counter, hides a shift by that period, a page for instance).

/// `len` bytes of xorshift64 from `seed`: the same bytes for the same
/// seed, different bytes for different seeds.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    fill(&mut out, seed);
    out
}

/// Fills `buf` as [`bytes`] would.
pub fn fill(buf: &mut [u8], seed: u64) {
    // Spread small seeds (0, 1, 2, ...) apart; xorshift needs a non-zero
    // state.
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for b in buf {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}
