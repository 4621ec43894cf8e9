//! Golden-byte tests. Expected bytes are written out by hand from
//! xs_wire.h (type codes, little-endian u32 fields, NUL conventions), not
//! produced by the encoder under test.

use xenstore_wire::reply::{self, WatchEvent};
use xenstore_wire::{Access, Decoder, Error, Message, MsgType, PathError, Permission, Request, XsError};

fn cat(header: [u8; 16], payload: &[u8]) -> Vec<u8> {
    let mut v = header.to_vec();
    v.extend_from_slice(payload);
    v
}

#[test]
fn read() {
    let r = Request::read("/a/b").unwrap();
    assert_eq!(r.encode(1), cat([2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0], b"/a/b\0"));
    assert_eq!(r.encoded_len(), 21);
}

#[test]
fn read_in_transaction_with_large_req_id() {
    let r = Request::read("x").unwrap().with_tx(0x0102_0304);
    assert_eq!(r.encode(0xdead_beef), cat([2, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde, 4, 3, 2, 1, 2, 0, 0, 0], b"x\0"));
}

#[test]
fn write_has_no_trailing_nul() {
    let r = Request::write("/a", b"xyz").unwrap().with_tx(7);
    assert_eq!(r.encode(2), cat([11, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 6, 0, 0, 0], b"/a\0xyz"));
    let empty = Request::write("/a", b"").unwrap();
    assert_eq!(empty.encode(2), cat([11, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0], b"/a\0"));
    // Binary values, including NUL, are carried verbatim.
    let bin = Request::write("/a", &[0, 0xff, 0]).unwrap();
    assert_eq!(bin.payload(), b"/a\0\0\xff\0");
}

#[test]
fn single_path_requests() {
    let cases: [(Request, u8); 4] = [
        (Request::mkdir("/d").unwrap(), 12),
        (Request::rm("/d").unwrap(), 13),
        (Request::directory("/d").unwrap(), 1),
        (Request::get_perms("/d").unwrap(), 3),
    ];
    for (r, code) in cases {
        assert_eq!(r.encode(3), cat([code, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0], b"/d\0"));
    }
    assert_eq!(Request::directory("/").unwrap().encode(5), cat([1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0], b"/\0"));
}

#[test]
fn set_perms() {
    let perms = [
        Permission::new(0, Access::Both),
        Permission::new(5, Access::Read),
        Permission::new(3, Access::Write),
        Permission::new(7, Access::None),
    ];
    let r = Request::set_perms("/p", &perms).unwrap();
    assert_eq!(r.encode(9), cat([14, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 15, 0, 0, 0], b"/p\0b0\0r5\0w3\0n7\0"));
    let r = Request::set_perms("/p", &[Permission::new(65535, Access::Read)]).unwrap();
    assert_eq!(r.payload(), b"/p\0r65535\0");
}

#[test]
fn watch_and_unwatch() {
    assert_eq!(Request::watch("/w", "tk").unwrap().encode(4), cat([4, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0], b"/w\0tk\0"));
    assert_eq!(
        Request::unwatch("/w", "tk").unwrap().encode(4),
        cat([5, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0], b"/w\0tk\0")
    );
    assert_eq!(Request::watch("@releaseDomain", "").unwrap().payload(), b"@releaseDomain\0\0");
}

#[test]
fn transactions() {
    assert_eq!(Request::transaction_start().encode(0x0102_0304), cat([6, 0, 0, 0, 4, 3, 2, 1, 0, 0, 0, 0, 1, 0, 0, 0], b"\0"));
    assert_eq!(
        Request::transaction_end(9, true).unwrap().encode(1),
        cat([7, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 2, 0, 0, 0], b"T\0")
    );
    assert_eq!(
        Request::transaction_end(9, false).unwrap().encode(1),
        cat([7, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 2, 0, 0, 0], b"F\0")
    );
    assert_eq!(Request::transaction_end(0, true), Err(Error::ZeroTxId));
}

#[test]
fn get_domain_path_and_reset_watches() {
    assert_eq!(Request::get_domain_path(5).encode(1), cat([10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0], b"5\0"));
    assert_eq!(Request::get_domain_path(32752).encode(1), cat([10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0], b"32752\0"));
    assert_eq!(Request::reset_watches().encode(1), cat([21, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0], b"\0"));
}

#[test]
fn encode_into_appends() {
    let mut out = vec![0xaa];
    Request::rm("z").unwrap().encode_into(1, &mut out);
    let mut want = vec![0xaa];
    want.extend(cat([13, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0], b"z\0"));
    assert_eq!(out, want);
}

#[test]
fn invalid_arguments() {
    let bad_paths: [(&str, PathError); 4] = [
        ("", PathError::Empty),
        ("/a/", PathError::TrailingSlash),
        ("/a//b", PathError::DoubleSlash),
        ("/a\0b", PathError::BadChar(0)),
    ];
    for (p, e) in bad_paths {
        let want = Err(Error::InvalidPath(e));
        assert_eq!(Request::read(p), want);
        assert_eq!(Request::write(p, b"v"), want);
        assert_eq!(Request::mkdir(p), want);
        assert_eq!(Request::rm(p), want);
        assert_eq!(Request::directory(p), want);
        assert_eq!(Request::get_perms(p), want);
        assert_eq!(Request::set_perms(p, &[Permission::new(0, Access::Both)]), want);
        assert_eq!(Request::watch(p, "t"), want);
        assert_eq!(Request::unwatch(p, "t"), want);
    }
    assert_eq!(Request::watch("/a", "t\0x"), Err(Error::InvalidToken));
    assert_eq!(Request::set_perms("/a", &[]), Err(Error::NoPermissions));
}

#[test]
fn payload_limit() {
    // "/a\0" is 3 bytes: 4093 value bytes fill the payload exactly.
    let r = Request::write("/a", &[b'v'; 4093]).unwrap();
    assert_eq!(r.payload().len(), 4096);
    assert_eq!(&r.encode(0)[12..16], &[0, 0x10, 0, 0]);
    assert_eq!(Request::write("/a", &[b'v'; 4094]), Err(Error::PayloadTooLarge(4097)));
    // Token: "/a\0" + 4092 + "\0" = 4096.
    let tok = "t".repeat(4092);
    assert!(Request::watch("/a", &tok).is_ok());
    let tok = "t".repeat(4093);
    assert_eq!(Request::watch("/a", &tok), Err(Error::PayloadTooLarge(4097)));
    // Each "b65535\0" is 7 bytes; 3 + 7*584 = 4091 fits, one more doesn't.
    let p = Permission::new(65535, Access::Both);
    assert!(Request::set_perms("/a", &[p; 584]).is_ok());
    assert_eq!(Request::set_perms("/a", &[p; 585]), Err(Error::PayloadTooLarge(4098)));
    assert_eq!(Request::raw(MsgType::Introduce, vec![0; 4097]), Err(Error::PayloadTooLarge(4097)));
    assert!(Request::raw(MsgType::Introduce, vec![0; 4096]).is_ok());
}

/// A reply stream as a daemon would send it, one message per line.
fn golden_replies() -> Vec<u8> {
    let mut s = Vec::new();
    s.extend(cat([16, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0], b"ENOENT\0"));
    s.extend(cat([1, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0], b"a\0bb\0c-1\0"));
    s.extend(cat([2, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0], b"hello"));
    s.extend(cat([6, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0], b"17\0"));
    s.extend(cat([3, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0], b"b0\0r5\0"));
    s.extend(cat([15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 22, 0, 0, 0], b"/local/domain/1/x\0tok\0"));
    s.extend(cat([11, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0], b"OK\0"));
    s.extend(cat([10, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0], b"/local/domain/5\0"));
    s.extend(cat([1, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], b""));
    s
}

fn check_replies(m: &[Message]) {
    assert_eq!(m.len(), 9);
    assert_eq!(m[0].req_id(), 3);
    assert_eq!(reply::read(&m[0]), Err(Error::Xs(XsError::Enoent)));
    assert_eq!(reply::directory(&m[1]).unwrap(), ["a", "bb", "c-1"]);
    assert_eq!(reply::read(&m[2]).unwrap(), b"hello");
    assert_eq!(reply::transaction_start(&m[3]), Ok(17));
    assert_eq!(reply::get_perms(&m[4]).unwrap(), [Permission::new(0, Access::Both), Permission::new(5, Access::Read)]);
    assert_eq!(reply::watch_event(&m[5]).unwrap(), WatchEvent { path: "/local/domain/1/x".into(), token: "tok".into() });
    assert_eq!(reply::ack(&m[6], MsgType::Write), Ok(()));
    assert_eq!(reply::get_domain_path(&m[7]).unwrap(), "/local/domain/5");
    assert_eq!(reply::directory(&m[8]).unwrap(), Vec::<String>::new());
    // Type mismatches are reported, not misparsed.
    assert_eq!(reply::ack(&m[2], MsgType::Write), Err(Error::UnexpectedType { expected: MsgType::Write, got: MsgType::Read }));
}

#[test]
fn replies_in_every_chunk_size() {
    let stream = golden_replies();
    for size in 1..=stream.len() {
        let mut d = Decoder::new();
        let mut msgs = Vec::new();
        for chunk in stream.chunks(size) {
            d.push(chunk).unwrap();
            while let Some(m) = d.next_message() {
                msgs.push(m);
            }
        }
        assert!(!d.has_partial(), "chunk size {size}");
        check_replies(&msgs);
    }
}

#[test]
fn truncated_reply_stream_yields_only_complete_messages() {
    let stream = golden_replies();
    // Cut in the middle of the second message's payload (19 + 16 + 4).
    let mut d = Decoder::new();
    d.push(&stream[..39]).unwrap();
    assert_eq!(d.ready_len(), 1);
    assert!(d.has_partial());
    assert_eq!(d.next_message().unwrap().msg_type(), MsgType::Error);
    assert!(d.next_message().is_none());
}
