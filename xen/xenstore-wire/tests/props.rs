//! Property-style tests driven by a small deterministic PRNG, so failures
//! reproduce exactly without an external crate.

use xenstore_wire::reply;
use xenstore_wire::ring::{self, XENSTORE_RING_SIZE};
use xenstore_wire::{
    path, Access, Decoder, Error, Frame, Header, Message, MsgType, Permission, Request,
    XENSTORE_PAYLOAD_MAX,
};

/// xorshift64*: tiny, deterministic, good enough for test inputs.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn u32(&mut self) -> u32 {
        self.next() as u32
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

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

fn random_message(rng: &mut Rng) -> Message {
    // Mostly small payloads, occasionally up to the maximum.
    let len = match rng.below(10) {
        0 => XENSTORE_PAYLOAD_MAX - rng.below(3),
        1 => 0,
        2 => rng.below(XENSTORE_PAYLOAD_MAX + 1),
        _ => rng.below(64),
    };
    let payload = rng.bytes(len);
    Message {
        header: Header {
            msg_type: TYPES[rng.below(TYPES.len())],
            req_id: rng.u32(),
            tx_id: rng.u32(),
            len: len as u32,
        },
        payload,
    }
}

/// Splits `data` into random chunk sizes, biased towards tiny ones.
fn random_chunks<'a>(rng: &mut Rng, mut data: &'a [u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let max = match rng.below(4) {
            0 => 1,
            1 => 17,
            2 => 1024,
            _ => 8192,
        };
        let n = 1 + rng.below(max.min(data.len()));
        let (a, b) = data.split_at(n);
        out.push(a);
        data = b;
    }
    out
}

#[test]
fn random_streams_roundtrip_under_random_chunking() {
    let mut rng = Rng::new(1);
    for _ in 0..300 {
        let msgs: Vec<Message> = (0..1 + rng.below(8)).map(|_| random_message(&mut rng)).collect();
        let mut stream = Vec::new();
        for m in &msgs {
            stream.extend_from_slice(&m.header.to_bytes());
            stream.extend_from_slice(&m.payload);
        }
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for chunk in random_chunks(&mut rng, &stream) {
            d.push(chunk).unwrap();
            while let Some(m) = d.next_message() {
                got.push(m);
            }
        }
        assert_eq!(got, msgs);
        assert!(!d.has_partial());

        // The non-queueing API agrees.
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for mut chunk in random_chunks(&mut rng, &stream) {
            while !chunk.is_empty() {
                let (used, m) = d.decode(chunk).unwrap();
                assert!(used > 0 && used <= chunk.len());
                got.extend(m);
                chunk = &chunk[used..];
            }
        }
        assert_eq!(got, msgs);
    }
}

#[test]
fn random_garbage_never_panics_and_poisons_consistently() {
    let mut rng = Rng::new(2);
    for round in 0..2000 {
        let n = rng.below(300);
        let mut data = rng.bytes(n);
        // Half the time, plant a plausible header so parsing goes deeper.
        if round % 2 == 0 && data.len() >= 16 {
            data[0] = rng.below(24) as u8;
            data[1..4].fill(0);
            let len = rng.below(40) as u32;
            data[12..16].copy_from_slice(&len.to_le_bytes());
        }
        let mut d = Decoder::new();
        let mut failed = false;
        for chunk in random_chunks(&mut rng, &data) {
            match d.push(chunk) {
                Ok(()) => assert!(!failed),
                Err(Error::Poisoned) => assert!(failed),
                Err(e) => {
                    assert!(!failed);
                    assert!(
                        matches!(e, Error::UnknownType(_) | Error::PayloadTooLarge(_)),
                        "{e:?}"
                    );
                    failed = true;
                }
            }
            assert_eq!(d.is_poisoned(), failed);
        }
        // Everything delivered is internally consistent.
        while let Some(m) = d.next_message() {
            assert_eq!(m.payload.len(), m.header.payload_len());
            assert!(m.payload.len() <= XENSTORE_PAYLOAD_MAX);
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

#[test]
fn random_short_strings_through_parsers() {
    // Small alphabets hit the interesting separators far more often.
    let alphabet = b"\0/0129abrwnbOK-";
    let mut rng = Rng::new(3);
    for _ in 0..20000 {
        let s: Vec<u8> = (0..rng.below(12)).map(|_| alphabet[rng.below(alphabet.len())]).collect();
        if let Ok(perms) = reply::parse_perms(&s) {
            // Anything accepted re-encodes to exactly the input.
            let mut re = Vec::new();
            for p in &perms {
                re.extend(p.to_string().bytes());
                re.push(0);
            }
            let canonical = !s.split(|&b| b == 0).any(|e| e.len() > 2 && e[1] == b'0');
            if canonical {
                assert_eq!(re, s);
            }
        }
        if let Ok(names) = reply::parse_directory(&s) {
            assert!(names.iter().all(|n| !n.is_empty() && !n.contains('/')));
        }
        if let Ok(id) = reply::parse_tx_id(&s) {
            assert_ne!(id, 0);
        }
        let _ = reply::parse_watch_event(&s);
    }
}

fn random_valid_path(rng: &mut Rng) -> String {
    const CHARS: &[u8] = b"abcXYZ019-_@";
    let mut p = String::new();
    if rng.below(2) == 0 {
        p.push('/');
    }
    for i in 0..1 + rng.below(5) {
        if i > 0 {
            p.push('/');
        }
        for _ in 0..1 + rng.below(8) {
            p.push(CHARS[rng.below(CHARS.len())] as char);
        }
    }
    p
}

#[test]
fn encoded_requests_decode_back() {
    let mut rng = Rng::new(4);
    for _ in 0..500 {
        let p = random_valid_path(&mut rng);
        assert_eq!(path::validate(&p), Ok(()), "{p}");
        let n = rng.below(200);
        let value = rng.bytes(n);
        let perms: Vec<Permission> = (0..1 + rng.below(4))
            .map(|_| {
                let access = [Access::None, Access::Read, Access::Write, Access::Both][rng.below(4)];
                Permission::new(rng.u32() as u16, access)
            })
            .collect();
        let tx = rng.u32();
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
        for chunk in random_chunks(&mut rng, &stream) {
            d.push(chunk).unwrap();
        }
        for (i, r) in reqs.iter().enumerate() {
            let m = d.next_message().unwrap();
            assert_eq!(m.header, r.header(i as u32));
            assert_eq!(m.payload, r.payload());
        }
        // Payload structure as the daemon would parse it.
        let w = &reqs[1];
        let nul = w.payload().iter().position(|&b| b == 0).unwrap();
        assert_eq!(&w.payload()[..nul], p.as_bytes());
        assert_eq!(&w.payload()[nul + 1..], &value[..]);
        let sp = reqs[2].payload();
        let after_path = &sp[p.len() + 1..];
        assert_eq!(reply::parse_perms(after_path).unwrap(), perms);
        assert_eq!(reqs[0].tx_id(), tx);
    }
}

/// Pushes a byte stream through a simulated 1024-byte ring using only the
/// crate's index arithmetic, with indices starting near u32 wrap-around.
#[test]
fn ring_transfer_across_u32_wrap() {
    let mut rng = Rng::new(5);
    for round in 0..200 {
        let start = u32::MAX - rng.below(3000) as u32;
        let (mut cons, mut prod) = (start, start);
        let mut ring_buf = [0u8; XENSTORE_RING_SIZE];
        let n = 1 + rng.below(6000);
        let data = rng.bytes(n);
        let (mut sent, mut received) = (0usize, Vec::new());
        while received.len() < data.len() {
            if rng.below(2) == 0 && sent < data.len() {
                let chunk = ring::write_chunk(cons, prod).unwrap();
                let n = chunk.len().min(data.len() - sent).min(1 + rng.below(700));
                ring_buf[chunk.start..chunk.start + n].copy_from_slice(&data[sent..sent + n]);
                sent += n;
                prod = ring::advance(prod, n);
            } else {
                let chunk = ring::read_chunk(cons, prod).unwrap();
                let n = chunk.len().min(1 + rng.below(700));
                received.extend_from_slice(&ring_buf[chunk.start..chunk.start + n]);
                cons = ring::advance(cons, n);
            }
            let used = ring::readable(cons, prod).unwrap();
            assert_eq!(used + ring::writable(cons, prod).unwrap(), XENSTORE_RING_SIZE);
            assert_eq!(used, sent - received.len(), "round {round}");
        }
        assert_eq!(received, data);
        assert_eq!(prod, start.wrapping_add(data.len() as u32));
        assert_eq!(cons, prod);
    }
}

#[test]
fn ring_rejects_random_corrupt_indices() {
    let mut rng = Rng::new(6);
    for _ in 0..10000 {
        let cons = rng.u32();
        let prod = rng.u32();
        let used = prod.wrapping_sub(cons) as usize;
        let r = ring::readable(cons, prod);
        if used <= XENSTORE_RING_SIZE {
            assert_eq!(r, Ok(used));
            let rc = ring::read_chunk(cons, prod).unwrap();
            let wc = ring::write_chunk(cons, prod).unwrap();
            assert!(rc.end <= XENSTORE_RING_SIZE && wc.end <= XENSTORE_RING_SIZE);
        } else {
            assert_eq!(r, Err(Error::RingCorrupted { cons, prod }));
            assert!(ring::write_chunk(cons, prod).is_err());
        }
    }
}
