//! Property tests (proptest): message streams under any chunking, garbage
//! into every parser, requests that decode back, ring index arithmetic.
//!
//! A failing case is shrunk and its seed saved in
//! `tests/props.proptest-regressions`; commit that file so the case is
//! replayed first from then on, here and in CI.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{FileFailurePersistence, RngAlgorithm};
use xenstore_wire::reply;
use xenstore_wire::ring::{self, XENSTORE_RING_SIZE};
use xenstore_wire::{path, Access, Decoder, Error, Frame, Header, Message, MsgType, Permission, Request, XENSTORE_PAYLOAD_MAX};

const TYPES: [MsgType; 22] = [
    MsgType::Control,
    MsgType::Directory,
    MsgType::Read,
    MsgType::GetPerms,
    MsgType::Watch,
    MsgType::Unwatch,
    MsgType::TransactionStart,
    MsgType::TransactionEnd,
    MsgType::Introduce,
    MsgType::Release,
    MsgType::GetDomainPath,
    MsgType::Write,
    MsgType::Mkdir,
    MsgType::Rm,
    MsgType::SetPerms,
    MsgType::WatchEvent,
    MsgType::Error,
    MsgType::IsDomainIntroduced,
    MsgType::Resume,
    MsgType::SetTarget,
    MsgType::ResetWatches,
    MsgType::DirectoryPart,
];

/// `cases` cases from proptest's XorShift generator (in these unoptimised
/// test builds its default, ChaCha, costs ten times as much); failing
/// cases saved beside this file, in `props.proptest-regressions`.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        rng_algorithm: RngAlgorithm::XorShift,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::with_cases(cases)
    }
}

/// Any message: mostly small payloads, often empty, at times at or just
/// below the maximum.
fn message() -> impl Strategy<Value = Message> {
    let len = prop_oneof![
        1 => (XENSTORE_PAYLOAD_MAX - 2)..=XENSTORE_PAYLOAD_MAX,
        1 => Just(0usize),
        1 => 0..=XENSTORE_PAYLOAD_MAX,
        7 => 0..64usize,
    ];
    (select(&TYPES[..]), any::<u32>(), any::<u32>(), len).prop_flat_map(|(msg_type, req_id, tx_id, len)| {
        vec(any::<u8>(), len)
            .prop_map(move |payload| Message { header: Header { msg_type, req_id, tx_id, len: len as u32 }, payload })
    })
}

/// Chunk sizes, used in turn (and again from the first) to cut a stream:
/// single bytes, a few bytes, up to a page or two.
fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    vec(prop_oneof![Just(1usize), 1..=17usize, 1..=1024usize, 1..=8192usize], 1..32)
}

/// `data` cut into pieces of `sizes[0]`, `sizes[1]`, ... bytes, the sizes
/// taken round and round, the last piece what is left.
fn chunks<'a>(mut data: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    for &n in sizes.iter().cycle() {
        if data.is_empty() {
            break;
        }
        let (a, b) = data.split_at(n.min(data.len()));
        out.push(a);
        data = b;
    }
    out
}

#[test]
fn chunks_cover_the_data_in_order() {
    let data: Vec<u8> = (0..=20).collect();
    let got = chunks(&data, &[1, 5, 3]);
    assert_eq!(got.iter().map(|c| c.len()).collect::<Vec<_>>(), [1, 5, 3, 1, 5, 3, 1, 2]);
    assert_eq!(got.concat(), data);
    assert!(chunks(&[], &[4]).is_empty());
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn streams_roundtrip_under_any_chunking(
        msgs in vec(message(), 1..=8),
        cut_a in chunk_sizes(),
        cut_b in chunk_sizes(),
    ) {
        let mut stream = Vec::new();
        for m in &msgs {
            stream.extend_from_slice(&m.header.to_bytes());
            stream.extend_from_slice(&m.payload);
        }
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for chunk in chunks(&stream, &cut_a) {
            d.push(chunk).unwrap();
            while let Some(m) = d.next_message() {
                got.push(m);
            }
        }
        prop_assert_eq!(&got, &msgs);
        prop_assert!(!d.has_partial());

        // The non-queueing API agrees.
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for mut chunk in chunks(&stream, &cut_b) {
            while !chunk.is_empty() {
                let (used, m) = d.decode(chunk).unwrap();
                prop_assert!(used > 0 && used <= chunk.len());
                got.extend(m);
                chunk = &chunk[used..];
            }
        }
        prop_assert_eq!(got, msgs);
    }
}

/// Up to 300 bytes of anything; half the time with a plausible header
/// (known or nearly known type, small length) planted so parsing goes
/// deeper.
fn garbage() -> impl Strategy<Value = Vec<u8>> {
    (vec(any::<u8>(), 0..300), proptest::option::of((0..24u8, 0..40u32))).prop_map(|(mut data, plant)| {
        if let Some((msg_type, len)) = plant {
            if data.len() >= 16 {
                data[0] = msg_type;
                data[1..4].fill(0);
                data[12..16].copy_from_slice(&len.to_le_bytes());
            }
        }
        data
    })
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn garbage_never_panics_and_poisons_consistently(data in garbage(), cut in chunk_sizes()) {
        let mut d = Decoder::new();
        let mut failed = false;
        for chunk in chunks(&data, &cut) {
            match d.push(chunk) {
                Ok(()) => prop_assert!(!failed),
                Err(Error::Poisoned) => prop_assert!(failed),
                Err(e) => {
                    prop_assert!(!failed);
                    prop_assert!(matches!(e, Error::UnknownType(_) | Error::PayloadTooLarge(_)), "{:?}", e);
                    failed = true;
                }
            }
            prop_assert_eq!(d.is_poisoned(), failed);
        }
        // Everything delivered is internally consistent.
        while let Some(m) = d.next_message() {
            prop_assert_eq!(m.payload.len(), m.header.payload_len());
            prop_assert!(m.payload.len() <= XENSTORE_PAYLOAD_MAX);
            // Reply parsers must cope with arbitrary payloads.
            let _ = reply::parse_directory(&m.payload);
            let _ = reply::parse_perms(&m.payload);
            let _ = reply::parse_tx_id(&m.payload);
            let _ = reply::parse_watch_event(&m.payload);
            let _ = reply::parse_domain_path(&m.payload);
            let _ = reply::parse_ok(&m.payload);
            let _ = reply::expect(&m, MsgType::Read);
        }
        let _ = Frame::new_checked(&data[..]).map(|f| (f.payload().len(), f.header()));
        let _ = Header::parse(&data);
        let _ = Permission::parse(&data);
        if let Ok(s) = core::str::from_utf8(&data) {
            let _ = path::validate(s);
        }
    }
}

proptest! {
    #![proptest_config(config(20_000))]

    /// Small alphabets hit the interesting separators far more often.
    #[test]
    fn short_strings_through_parsers(s in vec(select(&b"\0/0129abrwnbOK-"[..]), 0..12)) {
        if let Ok(perms) = reply::parse_perms(&s) {
            // Anything accepted re-encodes to exactly the input.
            let mut re = Vec::new();
            for p in &perms {
                re.extend(p.to_string().bytes());
                re.push(0);
            }
            let canonical = !s.split(|&b| b == 0).any(|e| e.len() > 2 && e[1] == b'0');
            if canonical {
                prop_assert_eq!(re, s.clone());
            }
        }
        if let Ok(names) = reply::parse_directory(&s) {
            prop_assert!(names.iter().all(|n| !n.is_empty() && !n.contains('/')));
        }
        if let Ok(id) = reply::parse_tx_id(&s) {
            prop_assert_ne!(id, 0);
        }
        let _ = reply::parse_watch_event(&s);
    }
}

/// A valid path: optionally absolute, 1 to 5 elements of 1 to 8 allowed
/// characters.
fn valid_path() -> impl Strategy<Value = String> {
    let element = vec(select(&b"abcXYZ019-_@"[..]), 1..=8);
    (any::<bool>(), vec(element, 1..=5)).prop_map(|(absolute, elements)| {
        let elements: Vec<String> = elements.into_iter().map(|e| String::from_utf8(e).unwrap()).collect();
        let joined = elements.join("/");
        if absolute {
            format!("/{joined}")
        } else {
            joined
        }
    })
}

fn permission() -> impl Strategy<Value = Permission> {
    (any::<u16>(), select(&[Access::None, Access::Read, Access::Write, Access::Both][..]))
        .prop_map(|(domid, access)| Permission::new(domid, access))
}

proptest! {
    #![proptest_config(config(500))]

    #[test]
    fn encoded_requests_decode_back(
        p in valid_path(),
        value in vec(any::<u8>(), 0..200),
        perms in vec(permission(), 1..=4),
        tx in any::<u32>(),
        cut in chunk_sizes(),
    ) {
        prop_assert_eq!(path::validate(&p), Ok(()), "{}", p);
        let reqs = [
            Request::read(&p).unwrap().with_tx(tx),
            Request::write(&p, &value).unwrap(),
            Request::set_perms(&p, &perms).unwrap(),
            Request::watch(&p, "tok").unwrap(),
        ];
        let mut stream = Vec::new();
        for (i, r) in reqs.iter().enumerate() {
            r.encode_into(i as u32, &mut stream);
        }
        let mut d = Decoder::new();
        for chunk in chunks(&stream, &cut) {
            d.push(chunk).unwrap();
        }
        for (i, r) in reqs.iter().enumerate() {
            let m = d.next_message().unwrap();
            prop_assert_eq!(m.header, r.header(i as u32));
            prop_assert_eq!(&m.payload[..], r.payload());
        }
        prop_assert!(d.next_message().is_none());
        // Payload structure as the daemon would parse it.
        let w = &reqs[1];
        let nul = w.payload().iter().position(|&b| b == 0).unwrap();
        prop_assert_eq!(&w.payload()[..nul], p.as_bytes());
        prop_assert_eq!(&w.payload()[nul + 1..], &value[..]);
        let sp = reqs[2].payload();
        let after_path = &sp[p.len() + 1..];
        prop_assert_eq!(reply::parse_perms(after_path).unwrap(), perms);
        prop_assert_eq!(reqs[0].tx_id(), tx);
    }
}

proptest! {
    #![proptest_config(config(200))]

    /// Pushes a byte stream through a simulated 1024-byte ring using only
    /// the crate's index arithmetic, with indices starting near the u32
    /// wrap-around. `steps` says, in turn, whether to write or read and
    /// how much at most; a write into a full ring reads instead, a read of
    /// an empty one writes.
    #[test]
    fn ring_transfer_across_u32_wrap(
        before_wrap in 0..3000u32,
        data in vec(any::<u8>(), 1..=6000),
        steps in vec((any::<bool>(), 1..=700usize), 1..64),
    ) {
        let start = u32::MAX - before_wrap;
        let (mut cons, mut prod) = (start, start);
        let mut ring_buf = [0u8; XENSTORE_RING_SIZE];
        let (mut sent, mut received) = (0usize, Vec::new());
        let mut steps = steps.iter().cycle();
        while received.len() < data.len() {
            let &(write, most) = steps.next().unwrap();
            let can_write = sent < data.len() && ring::writable(cons, prod).unwrap() > 0;
            let can_read = ring::readable(cons, prod).unwrap() > 0;
            if (write && can_write) || !can_read {
                let chunk = ring::write_chunk(cons, prod).unwrap();
                let n = chunk.len().min(data.len() - sent).min(most);
                prop_assert!(n > 0);
                ring_buf[chunk.start..chunk.start + n].copy_from_slice(&data[sent..sent + n]);
                sent += n;
                prod = ring::advance(prod, n);
            } else {
                let chunk = ring::read_chunk(cons, prod).unwrap();
                let n = chunk.len().min(most);
                prop_assert!(n > 0);
                received.extend_from_slice(&ring_buf[chunk.start..chunk.start + n]);
                cons = ring::advance(cons, n);
            }
            let used = ring::readable(cons, prod).unwrap();
            prop_assert_eq!(used + ring::writable(cons, prod).unwrap(), XENSTORE_RING_SIZE);
            prop_assert_eq!(used, sent - received.len());
        }
        prop_assert_eq!(&received, &data);
        prop_assert_eq!(prod, start.wrapping_add(data.len() as u32));
        prop_assert_eq!(cons, prod);
    }
}

/// A pair of ring indices: anything at all (almost always corrupt), a
/// valid distance, or just past one (more than a ring, or behind).
fn indices() -> impl Strategy<Value = (u32, u32)> {
    let ring = XENSTORE_RING_SIZE as u32;
    prop_oneof![
        (any::<u32>(), any::<u32>()),
        (any::<u32>(), 0..=ring).prop_map(|(cons, d)| (cons, cons.wrapping_add(d))),
        (any::<u32>(), 1..=ring).prop_map(move |(cons, d)| (cons, cons.wrapping_add(ring + d))),
        (any::<u32>(), 1..=ring).prop_map(|(cons, d)| (cons, cons.wrapping_sub(d))),
    ]
}

proptest! {
    #![proptest_config(config(10_000))]

    #[test]
    fn ring_rejects_corrupt_indices((cons, prod) in indices()) {
        let used = prod.wrapping_sub(cons) as usize;
        let r = ring::readable(cons, prod);
        if used <= XENSTORE_RING_SIZE {
            prop_assert_eq!(r, Ok(used));
            prop_assert_eq!(ring::writable(cons, prod), Ok(XENSTORE_RING_SIZE - used));
            let rc = ring::read_chunk(cons, prod).unwrap();
            let wc = ring::write_chunk(cons, prod).unwrap();
            prop_assert!(rc.end <= XENSTORE_RING_SIZE && wc.end <= XENSTORE_RING_SIZE);
            prop_assert_eq!(rc.is_empty(), used == 0);
            prop_assert_eq!(wc.is_empty(), used == XENSTORE_RING_SIZE);
        } else {
            prop_assert_eq!(r, Err(Error::RingCorrupted { cons, prod }));
            prop_assert!(ring::write_chunk(cons, prod).is_err());
            prop_assert!(ring::read_chunk(cons, prod).is_err());
        }
    }
}
