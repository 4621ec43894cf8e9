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
        buf.resize(n.div_ceil(8) * 8, 0);
        for word in buf.chunks_exact_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            word.copy_from_slice(&self.0.to_le_bytes());
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

/// How a stream's bytes are checked end to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckKind {
    /// SHA-256: what correctness checks use.
    Sha256,
    /// A 64-bit FNV-1a over 8-byte words: catches lost, duplicated or
    /// reordered bytes, at a fraction of SHA-256's cost, which under
    /// emulation would otherwise dominate a throughput measurement.
    Fast,
    /// The byte count alone, as netperf's TCP_STREAM: the sender repeats
    /// one buffer and the sink only counts, so the measurement is of the
    /// path, not of generating and hashing bytes.
    Count,
}

impl CheckKind {
    /// The 8 bytes a stream starts with to ask the sink for this check
    /// (neither counted nor checked); none for SHA-256, the default.
    pub fn magic(self) -> Option<[u8; 8]> {
        match self {
            CheckKind::Sha256 => None,
            CheckKind::Fast => Some(*b"cohort-f"),
            CheckKind::Count => Some(*b"cohort-n"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CheckKind::Sha256 => "sha256",
            CheckKind::Fast => "fnv64",
            CheckKind::Count => "count",
        }
    }
}

/// FNV-1a over little-endian 8-byte words, independent of how the bytes
/// are split into chunks; a final partial word is zero-padded and its
/// length mixed in.
#[derive(Clone)]
pub struct Fnv64 {
    h: u64,
    tail: [u8; 8],
    tail_len: usize,
}

const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Fnv64 {
    pub fn new() -> Fnv64 {
        Fnv64 { h: 0xcbf2_9ce4_8422_2325, tail: [0; 8], tail_len: 0 }
    }

    fn word(&mut self, w: [u8; 8]) {
        self.h = (self.h ^ u64::from_le_bytes(w)).wrapping_mul(FNV_PRIME);
    }

    pub fn update(&mut self, mut data: &[u8]) {
        if self.tail_len > 0 {
            let n = (8 - self.tail_len).min(data.len());
            self.tail[self.tail_len..self.tail_len + n].copy_from_slice(&data[..n]);
            self.tail_len += n;
            data = &data[n..];
            if self.tail_len < 8 {
                return;
            }
            self.word(self.tail);
            self.tail_len = 0;
        }
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.word(b);
        }
        let rest = words.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    pub fn finish(mut self) -> u64 {
        if self.tail_len > 0 {
            let mut w = [0u8; 8];
            w[..self.tail_len].copy_from_slice(&self.tail[..self.tail_len]);
            self.word(w);
            self.h = (self.h ^ self.tail_len as u64).wrapping_mul(FNV_PRIME);
        }
        self.h
    }
}

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64::new()
    }
}

/// A running check of any kind.
pub enum Check {
    Sha256(sha2::Sha256),
    Fast(Fnv64),
    Count,
}

impl Check {
    pub fn new(kind: CheckKind) -> Check {
        use sha2::Digest;
        match kind {
            CheckKind::Sha256 => Check::Sha256(sha2::Sha256::new()),
            CheckKind::Fast => Check::Fast(Fnv64::new()),
            CheckKind::Count => Check::Count,
        }
    }

    pub fn kind(&self) -> CheckKind {
        match self {
            Check::Sha256(_) => CheckKind::Sha256,
            Check::Fast(_) => CheckKind::Fast,
            Check::Count => CheckKind::Count,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        use sha2::Digest;
        match self {
            Check::Sha256(h) => h.update(data),
            Check::Fast(h) => h.update(data),
            Check::Count => {}
        }
    }

    /// The digest in lower-case hex (64 digits for SHA-256, 16 for fast;
    /// `-` for the count alone).
    pub fn finish(self) -> alloc::string::String {
        use sha2::Digest;
        match self {
            Check::Sha256(h) => hex(&h.finalize()),
            Check::Fast(h) => alloc::format!("{:016x}", h.finish()),
            Check::Count => alloc::string::String::from("-"),
        }
    }
}

/// The sending side of a checked stream: the next chunk of the pattern,
/// and the check of every chunk so far. For the count alone, one chunk is
/// sent again and again (what is measured is the path, not the pattern).
pub struct Chunks {
    pattern: Pattern,
    check: Check,
    buf: Vec<u8>,
}

impl Chunks {
    pub fn new(kind: CheckKind) -> Chunks {
        Chunks { pattern: Pattern::new(), check: Check::new(kind), buf: Vec::new() }
    }

    pub fn kind(&self) -> CheckKind {
        self.check.kind()
    }

    /// The next `n` bytes to send.
    pub fn next(&mut self, n: usize) -> &[u8] {
        if self.check.kind() == CheckKind::Count && self.buf.len() >= n {
            self.buf.truncate(n);
        } else {
            self.pattern.fill(&mut self.buf, n);
            self.check.update(&self.buf);
        }
        &self.buf
    }

    /// The chunk `next` returned last.
    pub fn current(&self) -> &[u8] {
        &self.buf
    }

    /// The digest of everything `next` gave.
    pub fn finish(self) -> alloc::string::String {
        self.check.finish()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use alloc::vec;

    #[test]
    fn the_pattern_is_the_same_whatever_the_chunks() {
        let (mut a, mut b) = (Pattern::new(), Pattern::new());
        let mut whole = Vec::new();
        a.fill(&mut whole, 64);
        let mut pieces = Vec::new();
        for n in [8, 24, 32] {
            let mut chunk = Vec::new();
            b.fill(&mut chunk, n);
            pieces.extend_from_slice(&chunk);
        }
        assert_eq!(whole, pieces);
        assert_ne!(whole[..8], whole[8..16], "not trivially repeating");
    }

    #[test]
    fn fnv_is_independent_of_how_the_bytes_are_split() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut whole = Fnv64::new();
        whole.update(&data);
        let whole = whole.finish();
        for split in [1, 3, 8, 13, 999] {
            let mut h = Fnv64::new();
            for chunk in data.chunks(split) {
                h.update(chunk);
            }
            assert_eq!(h.finish(), whole, "chunks of {split}");
        }
        // A lost, added or changed byte changes it.
        let mut h = Fnv64::new();
        h.update(&data[..999]);
        assert_ne!(h.finish(), whole);
        let mut changed = data.clone();
        changed[500] ^= 1;
        let mut h = Fnv64::new();
        h.update(&changed);
        assert_ne!(h.finish(), whole);
        let mut h = Fnv64::new();
        h.update(&[data.as_slice(), &[0]].concat());
        assert_ne!(h.finish(), whole, "a trailing zero byte counts");
    }

    #[test]
    fn checks_finish_as_digests_of_their_kind() {
        let mut digests = vec![];
        for kind in [CheckKind::Sha256, CheckKind::Fast, CheckKind::Count] {
            let mut c = Check::new(kind);
            assert_eq!(c.kind(), kind);
            c.update(b"abc");
            digests.push(c.finish());
        }
        assert_eq!(digests[0], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(digests[1].len(), 16);
        assert_eq!(digests[2], "-");
        assert_eq!(CheckKind::Fast.magic(), Some(*b"cohort-f"));
        assert_eq!(CheckKind::Sha256.magic(), None);
    }

    #[test]
    fn chunks_are_the_pattern_and_their_digest_is_of_all_of_them() {
        let mut chunks = Chunks::new(CheckKind::Fast);
        let mut sent = Vec::new();
        // Whole words but the last chunk (the pattern is made of words).
        for n in [16, 8, 13] {
            sent.extend_from_slice(chunks.next(n));
        }
        let mut expected = Vec::new();
        Pattern::new().fill(&mut expected, 37);
        assert_eq!(sent, expected);
        let mut check = Check::new(CheckKind::Fast);
        check.update(&expected);
        assert_eq!(chunks.finish(), check.finish());
        // The count alone repeats its first chunk, cut to size.
        let mut count = Chunks::new(CheckKind::Count);
        let first = count.next(16).to_vec();
        assert_eq!(count.next(16), first.as_slice());
        assert_eq!(count.next(4), &first[..4]);
        assert_eq!(count.finish(), "-");
    }
}
