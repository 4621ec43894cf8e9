//! One direction's byte ring, pure arithmetic.
//!
//! A frame is stored as a record: an 8-byte header (`len: u32`,
//! `kind: u32`, little endian) and the frame, padded to 8 bytes. A record
//! never wraps: when it does not fit before the end of the ring, a pad
//! record fills the rest and the frame starts at offset 0. So every frame
//! is contiguous in ring memory and can be written in place.
//!
//! Indices are free-running byte counts; the ring size is a power of two.
//! The consumer checks everything the producer published before using it:
//! see [`check`].

/// Bytes of a record header.
pub const HEADER: usize = 8;
pub const KIND_FRAME: u32 = 1;
pub const KIND_PAD: u32 = 2;
/// An Ethernet header at least.
pub const MIN_FRAME: usize = 14;
/// A standard Ethernet frame: 1500 bytes of payload and the header. What a
/// channel carries unless both sides accept larger frames.
pub const ETH_FRAME: usize = 1514;
/// The largest frame a channel may be configured for (an IPv4 packet of
/// 64 KiB with its Ethernet header).
pub const MAX_CHANNEL_FRAME: usize = 65536 + 14;

/// Bytes a record for a frame of `len` bytes takes.
#[inline]
pub fn record_len(len: usize) -> usize {
    HEADER + len.div_ceil(8) * 8
}

/// Where the producer puts a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Offset of a pad record to write first (to the end of the ring).
    pub pad_at: Option<usize>,
    /// Offset of the frame's record header.
    pub record_at: usize,
    /// The producer index once both are published.
    pub new_prod: u32,
}

/// Why a frame cannot be placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaceError {
    /// Not enough free space now; `cons_needed` is the consumer index at
    /// which there will be (for the space event).
    Full { cons_needed: u32 },
    /// The frame length is outside `MIN_FRAME..=max_frame`.
    BadLength,
    /// The consumer index the peer published is impossible.
    BadConsumer,
}

/// Places a frame of `len` bytes (at most `max_frame`), given our producer
/// index, the peer's consumer index (read once) and the ring size.
#[inline]
pub fn place(prod: u32, cons: u32, size: usize, len: usize, max_frame: usize) -> Result<Placement, PlaceError> {
    if !(MIN_FRAME..=max_frame).contains(&len) {
        return Err(PlaceError::BadLength);
    }
    let used = prod.wrapping_sub(cons) as usize;
    if used > size || !used.is_multiple_of(8) {
        return Err(PlaceError::BadConsumer);
    }
    let at = prod as usize & (size - 1);
    let tail = size - at;
    let record = record_len(len);
    let (pad_at, record_at, need) = if record <= tail { (None, at, record) } else { (Some(at), 0, tail + record) };
    if need > size - used {
        let cons_needed = prod.wrapping_add(need as u32).wrapping_sub(size as u32);
        return Err(PlaceError::Full { cons_needed });
    }
    Ok(Placement { pad_at, record_at, new_prod: prod.wrapping_add(need as u32) })
}

/// A record header as bytes.
#[inline]
pub fn header(len: usize, kind: u32) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..4].copy_from_slice(&(len as u32).to_le_bytes());
    h[4..].copy_from_slice(&kind.to_le_bytes());
    h
}

/// A checked record at the consumer index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// A frame of `len` bytes at ring offset `at`.
    Frame { at: usize, len: usize },
    /// Padding to the end of the ring.
    Pad,
}

/// What the producer did wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// `prod` is more than a ring ahead of `cons`, or not 8-aligned.
    Index { prod: u32, cons: u32 },
    /// An unknown record kind.
    Kind(u32),
    /// A frame length outside `MIN_FRAME..=max_frame`, or a record that
    /// runs past what was published or past the end of the ring.
    Length(u32),
}

/// How many bytes the producer published beyond `cons`, checked.
#[inline]
pub fn available(prod: u32, cons: u32, size: usize) -> Result<usize, Violation> {
    let avail = prod.wrapping_sub(cons) as usize;
    if avail > size || !avail.is_multiple_of(8) {
        return Err(Violation::Index { prod, cons });
    }
    Ok(avail)
}

/// Records a consumer takes per call: at most one pad (see [`check`]: a
/// pad never starts at offset 0, so none follows another) and the frame
/// after it. A peer republishing its index as fast as we consume cannot
/// keep a call going longer.
pub const MAX_RECORDS_PER_CALL: usize = 2;

/// Checks the record whose header (copied once) sits at `cons`, with
/// `avail` published bytes (from [`available`], non-zero) and frames of at
/// most `max_frame` bytes accepted. Returns it and the consumer index after
/// it.
#[inline]
pub fn check(cons: u32, avail: usize, size: usize, header: [u8; HEADER], max_frame: usize) -> Result<(Record, u32), Violation> {
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let kind = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let at = cons as usize & (size - 1);
    let tail = size - at;
    match kind {
        KIND_FRAME => {
            let n = len as usize;
            if !(MIN_FRAME..=max_frame).contains(&n) {
                return Err(Violation::Length(len));
            }
            let record = record_len(n);
            if record > tail || record > avail {
                return Err(Violation::Length(len));
            }
            Ok((Record::Frame { at: at + HEADER, len: n }, cons.wrapping_add(record as u32)))
        }
        KIND_PAD => {
            // A pad fills the tail of the ring before a frame that did not
            // fit there: it never starts at offset 0 (every frame fits a
            // whole ring), so two never follow each other.
            if at == 0 || len as usize + HEADER != tail || tail > avail {
                return Err(Violation::Length(len));
            }
            Ok((Record::Pad, cons.wrapping_add(tail as u32)))
        }
        other => Err(Violation::Kind(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: usize = 4096;
    const MAX_FRAME: usize = ETH_FRAME;

    #[test]
    fn records() {
        assert_eq!(record_len(14), 24);
        assert_eq!(record_len(16), 24);
        assert_eq!(record_len(1514), 1528);
    }

    #[test]
    fn place_and_check_agree_across_the_end() {
        // Every start offset (8-aligned) and a spread of lengths: what the
        // producer places, the consumer accepts, landing on the same index.
        for start in (0..SIZE).step_by(8) {
            for len in [MIN_FRAME, 15, 64, 1000, 1513, MAX_FRAME] {
                let prod = (start as u32).wrapping_add(0xffff_f000);
                let cons = prod;
                let p = place(prod, cons, SIZE, len, MAX_FRAME).unwrap();
                let (mut c, mut avail) = (cons, p.new_prod.wrapping_sub(cons) as usize);
                if let Some(pad_at) = p.pad_at {
                    assert_eq!(pad_at, start);
                    let (r, next) = check(c, avail, SIZE, header(SIZE - start - HEADER, KIND_PAD), MAX_FRAME).unwrap();
                    assert_eq!(r, Record::Pad);
                    avail -= next.wrapping_sub(c) as usize;
                    c = next;
                    assert_eq!(c as usize % SIZE, 0);
                }
                let (r, next) = check(c, avail, SIZE, header(len, KIND_FRAME), MAX_FRAME).unwrap();
                assert_eq!(r, Record::Frame { at: p.record_at + HEADER, len });
                assert_eq!(next, p.new_prod);
            }
        }
    }

    #[test]
    fn full_says_when_space_comes() {
        // 4000 bytes used; a 1514-byte frame needs 1528 more.
        let (prod, cons) = (4000u32, 0u32);
        match place(prod, cons, SIZE, MAX_FRAME, MAX_FRAME) {
            Err(PlaceError::Full { cons_needed }) => {
                // With cons there, the frame fits (after a pad to the end).
                assert!(place(prod, cons_needed, SIZE, MAX_FRAME, MAX_FRAME).is_ok());
                assert!(place(prod, cons_needed - 8, SIZE, MAX_FRAME, MAX_FRAME).is_err());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_inputs() {
        assert_eq!(place(0, 0, SIZE, 13, MAX_FRAME), Err(PlaceError::BadLength));
        assert_eq!(place(0, 0, SIZE, 1515, MAX_FRAME), Err(PlaceError::BadLength));
        assert_eq!(place(8, 16, SIZE, 60, MAX_FRAME), Err(PlaceError::BadConsumer));
        assert_eq!(place(4, 0, SIZE, 60, MAX_FRAME), Err(PlaceError::BadConsumer));
        assert_eq!(available(SIZE as u32 + 8, 0, SIZE), Err(Violation::Index { prod: SIZE as u32 + 8, cons: 0 }));
        assert_eq!(available(5, 0, SIZE), Err(Violation::Index { prod: 5, cons: 0 }));
        assert_eq!(available(0, 8, SIZE), Err(Violation::Index { prod: 0, cons: 8 }));
        // A frame longer than what was published, or than the ring's tail.
        assert_eq!(check(0, 24, SIZE, header(60, KIND_FRAME), MAX_FRAME), Err(Violation::Length(60)));
        assert_eq!(check(4088, 8 + 24, SIZE, header(16, KIND_FRAME), MAX_FRAME), Err(Violation::Length(16)));
        assert_eq!(check(0, 2000, SIZE, header(1515, KIND_FRAME), MAX_FRAME), Err(Violation::Length(1515)));
        assert_eq!(check(0, 2000, SIZE, header(0, KIND_FRAME), MAX_FRAME), Err(Violation::Length(0)));
        // A pad must reach exactly the end of the ring.
        assert_eq!(check(4000, 96, SIZE, header(80, KIND_PAD), MAX_FRAME), Err(Violation::Length(80)));
        assert_eq!(check(4000, 88, SIZE, header(88, KIND_PAD), MAX_FRAME), Err(Violation::Length(88)));
        // A pad over the whole ring (from offset 0) is never needed.
        assert_eq!(check(0, SIZE, SIZE, header(SIZE - HEADER, KIND_PAD), MAX_FRAME), Err(Violation::Length(4088)));
        assert_eq!(check(SIZE as u32, SIZE, SIZE, header(SIZE - HEADER, KIND_PAD), MAX_FRAME), Err(Violation::Length(4088)));
        assert_eq!(check(0, 24, SIZE, header(16, 7), MAX_FRAME), Err(Violation::Kind(7)));
    }
}
