//! The bytes clients send: xorshift64 from a fixed seed. Not trivially
//! compressible, cheap, and the same on every run.

use alloc::vec::Vec;

pub struct Pattern(u64);

impl Pattern {
    pub fn new() -> Pattern {
        Pattern(0x9e37_79b9_7f4a_7c15)
    }

    /// Replaces `buf` with the next `n` bytes.
    pub fn fill(&mut self, buf: &mut Vec<u8>, n: usize) {
        buf.clear();
        for _ in 0..n.div_ceil(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            buf.extend_from_slice(&self.0.to_le_bytes());
        }
        buf.truncate(n);
    }
}

impl Default for Pattern {
    fn default() -> Self {
        Pattern::new()
    }
}

/// Lower-case hex of a digest.
pub fn hex(digest: &[u8]) -> alloc::string::String {
    digest.iter().map(|b| alloc::format!("{b:02x}")).collect()
}
