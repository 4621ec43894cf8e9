//! The ring's index arithmetic against a model, across the u32 wrap: a
//! producer and a consumer with free-running indices that start anywhere
//! (near 2^32 included), random frame lengths and random interleavings.
//! The model keeps absolute (u64) byte positions and states the layout
//! rule independently: a record goes at the producer's offset if it fits
//! before the end of the ring, else a pad fills the tail and the record
//! starts at offset 0; either way only if the free space allows.

use std::collections::VecDeque;

use channel::ring::{self, check, header, place, PlaceError, Placement, Record, Violation, HEADER, KIND_FRAME, KIND_PAD};
use proptest::prelude::*;
use xen_proto::ring_index::notify_due;

#[derive(Clone, Copy, Debug)]
enum Op {
    /// The producer places a frame of this length.
    Produce(usize),
    /// The consumer takes up to this many records.
    Consume(usize),
    /// The consumer arms its data event (cons + 1), as before idling.
    Arm,
}

fn op(max_frame: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (ring::MIN_FRAME..=max_frame).prop_map(Op::Produce),
        1 => (ring::MIN_FRAME - 2..=max_frame + 2).prop_map(Op::Produce),
        3 => (1..4usize).prop_map(Op::Consume),
        1 => Just(Op::Arm),
    ]
}

#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Fits { pad: bool },
    Full,
}

struct Model {
    size: usize,
    max_frame: usize,
    /// Absolute positions (never wrap).
    prod: u64,
    cons: u64,
    /// The data event the consumer armed, absolute.
    event: Option<u64>,
    /// Records published and not consumed: (absolute start, kind, len).
    queue: VecDeque<(u64, u32, usize)>,
    /// The ring's bytes (headers only matter here).
    bytes: Vec<u8>,
    start: u32,
}

impl Model {
    fn idx(&self, abs: u64) -> u32 {
        self.start.wrapping_add(abs as u32)
    }

    /// The ring offset of an absolute position (the ring's size divides
    /// 2^32, so this is the index masked).
    fn off(&self, abs: u64) -> usize {
        (u64::from(self.start) + abs) as usize % self.size
    }

    fn expect(&self, len: usize) -> Result<Expect, PlaceError> {
        if !(ring::MIN_FRAME..=self.max_frame).contains(&len) {
            return Err(PlaceError::BadLength);
        }
        let free = self.size as u64 - (self.prod - self.cons);
        let at = self.off(self.prod);
        let tail = (self.size - at) as u64;
        let rec = ring::record_len(len) as u64;
        if rec <= tail {
            Ok(if rec <= free { Expect::Fits { pad: false } } else { Expect::Full })
        } else {
            Ok(if tail + rec <= free { Expect::Fits { pad: true } } else { Expect::Full })
        }
    }
}

fn run(size: usize, max_frame: usize, start: u32, ops: &[Op]) {
    let mut m =
        Model { size, max_frame, prod: 0, cons: 0, event: None, queue: VecDeque::new(), bytes: vec![0; size], start: start & !7 };
    let (mut frames_in, mut frames_out) = (0u64, 0u64);
    for &o in ops {
        match o {
            Op::Produce(len) => {
                let (prod, cons) = (m.idx(m.prod), m.idx(m.cons));
                let got = place(prod, cons, size, len, max_frame);
                match (m.expect(len), got) {
                    (Err(e), got) => assert_eq!(got, Err(e)),
                    (Ok(Expect::Full), Err(PlaceError::Full { cons_needed })) => {
                        // The consumer index at which it fits, and not before.
                        let needed = cons_needed.wrapping_sub(cons) as u64;
                        assert!(needed > 0 && needed <= m.prod - m.cons, "cons_needed {cons_needed} at cons {cons}");
                        assert!(place(prod, cons_needed, size, len, max_frame).is_ok());
                        assert!(matches!(
                            place(prod, cons_needed.wrapping_sub(8), size, len, max_frame),
                            Err(PlaceError::Full { .. })
                        ));
                    }
                    (Ok(Expect::Fits { pad }), Ok(Placement { pad_at, record_at, new_prod })) => {
                        let at = m.off(m.prod);
                        assert_eq!(pad_at.is_some(), pad);
                        let before = m.prod;
                        if let Some(p) = pad_at {
                            assert_eq!(p, at);
                            assert_eq!(record_at, 0);
                            m.bytes[p..p + HEADER].copy_from_slice(&header(size - p - HEADER, KIND_PAD));
                            m.queue.push_back((m.prod, KIND_PAD, size - p - HEADER));
                            m.prod += (size - p) as u64;
                        } else {
                            assert_eq!(record_at, at);
                        }
                        m.bytes[record_at..record_at + HEADER].copy_from_slice(&header(len, KIND_FRAME));
                        m.queue.push_back((m.prod, KIND_FRAME, len));
                        m.prod += ring::record_len(len) as u64;
                        assert_eq!(new_prod, m.idx(m.prod));
                        assert!(m.prod - m.cons <= size as u64, "never more than a ring");
                        frames_in += 1;
                        // The producer notifies iff the armed event lies
                        // in what it just published.
                        if let Some(ev) = m.event {
                            let want = before < ev && ev <= m.prod;
                            assert_eq!(
                                notify_due(m.idx(before), m.idx(m.prod), m.idx(ev)),
                                want,
                                "event {ev} publish {before}..{}",
                                m.prod
                            );
                        }
                    }
                    (want, got) => panic!("model says {want:?}, place says {got:?}"),
                }
            }
            Op::Consume(n) => {
                // Records per call, as the channel takes them.
                let prod = m.idx(m.prod);
                let mut avail = ring::available(prod, m.idx(m.cons), size).expect("a sane producer");
                assert_eq!(avail as u64, m.prod - m.cons);
                for _ in 0..n.min(ring::MAX_RECORDS_PER_CALL) {
                    if avail == 0 {
                        assert!(m.queue.is_empty(), "empty by the indices, not by the model");
                        break;
                    }
                    let at = m.off(m.cons);
                    let h: [u8; HEADER] = m.bytes[at..at + HEADER].try_into().unwrap();
                    let (rec, next) = check(m.idx(m.cons), avail, size, h, max_frame).expect("what place wrote checks");
                    let (start, kind, len) = m.queue.pop_front().expect("a record in the model");
                    assert_eq!(start, m.cons);
                    let took = next.wrapping_sub(m.idx(m.cons)) as u64;
                    match rec {
                        Record::Pad => assert_eq!((kind, took), (KIND_PAD, (size - at) as u64)),
                        Record::Frame { at: f, len: l } => {
                            assert_eq!((kind, l, f), (KIND_FRAME, len, at + HEADER));
                            assert_eq!(took, ring::record_len(len) as u64);
                            frames_out += 1;
                        }
                    }
                    m.cons += took;
                    avail -= took as usize;
                    if matches!(rec, Record::Frame { .. }) {
                        break;
                    }
                }
            }
            Op::Arm => m.event = Some(m.cons + 1),
        }
        // Empty and full as the indices say, the same as the model.
        let used = ring::available(m.idx(m.prod), m.idx(m.cons), size).expect("indices stay sane");
        assert_eq!(used as u64, m.prod - m.cons);
        assert_eq!(used == 0, m.queue.is_empty());
    }
    assert!(frames_out <= frames_in);
}

proptest! {
    // XorShift: in unoptimised test builds ChaCha costs ten times as much.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        rng_algorithm: proptest::test_runner::RngAlgorithm::XorShift,
        ..ProptestConfig::default()
    })]

    /// One page, standard frames, indices starting anywhere.
    #[test]
    fn one_page_ring_from_anywhere(start in any::<u32>(), ops in proptest::collection::vec(op(ring::ETH_FRAME), 1..400)) {
        run(4096, ring::ETH_FRAME, start, &ops);
    }

    /// Across the u32 wrap: indices start within a few rings of 2^32.
    #[test]
    fn across_the_wrap(back in 0u32..(4 * 8192), ops in proptest::collection::vec(op(ring::ETH_FRAME), 1..400)) {
        run(8192, ring::ETH_FRAME, 0u32.wrapping_sub(back), &ops);
    }

    /// Large frames in a ring that holds just two of them (the smallest
    /// ring a valid `Config` allows for them: below that a frame after a
    /// long tail could never fit).
    #[test]
    fn large_frames(back in 0u32..65536, ops in proptest::collection::vec(op(8184), 1..200)) {
        assert_eq!(2 * ring::record_len(8184), 4 * 4096);
        run(4 * 4096, 8184, 0u32.wrapping_sub(back), &ops);
    }

    /// Whatever a peer publishes as its producer index and record header,
    /// the consumer's checks either accept a record that lies inside what
    /// was published and inside the ring, or refuse it: never a panic,
    /// never a record past either end.
    #[test]
    fn hostile_headers_are_checked(cons in any::<u32>(), prod_delta in any::<u32>(), len in any::<u32>(), kind in 0u32..4) {
        let size = 4096usize;
        let cons = cons & !7;
        let prod = cons.wrapping_add(prod_delta);
        let Ok(avail) = ring::available(prod, cons, size) else { return Ok(()) };
        prop_assume!(avail > 0);
        let mut h = [0u8; HEADER];
        h[..4].copy_from_slice(&len.to_le_bytes());
        h[4..].copy_from_slice(&kind.to_le_bytes());
        match check(cons, avail, size, h, ring::ETH_FRAME) {
            Ok((Record::Frame { at, len }, next)) => {
                prop_assert!(at + len <= size);
                prop_assert!((next.wrapping_sub(cons) as usize) <= avail);
                prop_assert!((ring::MIN_FRAME..=ring::ETH_FRAME).contains(&len));
            }
            Ok((Record::Pad, next)) => {
                prop_assert!(!(cons as usize).is_multiple_of(size));
                prop_assert_eq!((next as usize) % size, 0);
                prop_assert!((next.wrapping_sub(cons) as usize) <= avail);
            }
            Err(Violation::Index { .. }) => prop_assert!(false, "the index was checked already"),
            Err(_) => {}
        }
    }
}
