//! Reply parsers on malformed and edge-case payloads.

use xenstore_wire::reply::{self, WatchEvent};
use xenstore_wire::{Access, Error, Header, Message, MsgType, PathError, Permission, XsError};

fn msg(msg_type: MsgType, payload: &[u8]) -> Message {
    Message { header: Header { msg_type, req_id: 1, tx_id: 0, len: payload.len() as u32 }, payload: payload.to_vec() }
}

#[test]
fn xs_error_table() {
    let names = [
        ("EINVAL", XsError::Einval, 22),
        ("EACCES", XsError::Eacces, 13),
        ("EEXIST", XsError::Eexist, 17),
        ("EISDIR", XsError::Eisdir, 21),
        ("ENOENT", XsError::Enoent, 2),
        ("ENOMEM", XsError::Enomem, 12),
        ("ENOSPC", XsError::Enospc, 28),
        ("EIO", XsError::Eio, 5),
        ("ENOTEMPTY", XsError::Enotempty, 39),
        ("ENOSYS", XsError::Enosys, 38),
        ("EROFS", XsError::Erofs, 30),
        ("EBUSY", XsError::Ebusy, 16),
        ("EAGAIN", XsError::Eagain, 11),
        ("EISCONN", XsError::Eisconn, 106),
        ("E2BIG", XsError::E2big, 7),
        ("EPERM", XsError::Eperm, 1),
    ];
    for (name, e, errno) in names {
        let with_nul = format!("{name}\0");
        assert_eq!(XsError::from_payload(with_nul.as_bytes()), e);
        assert_eq!(XsError::from_payload(name.as_bytes()), e);
        assert_eq!(e.as_str(), name);
        assert_eq!(e.errno(), Some(errno));
        assert_eq!(e.to_string(), name);
    }
    for junk in [&b""[..], b"\0", b"EFOO\0", b"einval\0", b"EINVAL\0\0", b" EINVAL"] {
        assert_eq!(XsError::from_payload(junk), XsError::Unknown, "{junk:?}");
    }
    assert_eq!(XsError::Unknown.errno(), None);
    assert_eq!(XsError::Unknown.as_str(), "UNKNOWN");
}

#[test]
fn error_reply_maps_through_every_helper() {
    let m = msg(MsgType::Error, b"EACCES\0");
    let want = Error::Xs(XsError::Eacces);
    assert_eq!(reply::read(&m), Err(want));
    assert_eq!(reply::directory(&m), Err(want));
    assert_eq!(reply::transaction_start(&m), Err(want));
    assert_eq!(reply::get_perms(&m), Err(want));
    assert_eq!(reply::get_domain_path(&m), Err(want));
    assert_eq!(reply::watch_event(&m), Err(want));
    assert_eq!(reply::ack(&m, MsgType::Rm), Err(want));
    // Expecting XS_ERROR itself returns the payload.
    assert_eq!(reply::expect(&m, MsgType::Error), Ok(&b"EACCES\0"[..]));
}

#[test]
fn ok_ack() {
    assert_eq!(reply::parse_ok(b"OK\0"), Ok(()));
    assert_eq!(reply::parse_ok(b"OK"), Ok(()));
    for bad in [&b""[..], b"\0", b"ok\0", b"OK\0\0", b"OKAY\0", b"O"] {
        assert_eq!(reply::parse_ok(bad), Err(Error::NotOk), "{bad:?}");
    }
    assert_eq!(reply::ack(&msg(MsgType::Watch, b"OK\0"), MsgType::Watch), Ok(()));
    assert_eq!(
        reply::ack(&msg(MsgType::Watch, b"OK\0"), MsgType::Unwatch),
        Err(Error::UnexpectedType { expected: MsgType::Unwatch, got: MsgType::Watch })
    );
}

#[test]
fn tx_id_garbage() {
    assert_eq!(reply::parse_tx_id(b"1\0"), Ok(1));
    assert_eq!(reply::parse_tx_id(b"4294967295\0"), Ok(u32::MAX));
    assert_eq!(reply::parse_tx_id(b"42"), Ok(42));
    for bad in [
        &b""[..],
        b"\0",
        b"0\0",
        b"abc\0",
        b"12a\0",
        b"-1\0",
        b"+1\0",
        b" 1\0",
        b"1 \0",
        b"1\0\0",
        b"1\x002\0",
        b"4294967296\0",
        b"0x10\0",
    ] {
        assert_eq!(reply::parse_tx_id(bad), Err(Error::InvalidTxId), "{bad:?}");
    }
}

#[test]
fn perms_garbage() {
    assert_eq!(reply::parse_perms(b"n0\0w12\0").unwrap(), [Permission::new(0, Access::None), Permission::new(12, Access::Write)]);
    assert_eq!(reply::parse_perms(b""), Err(Error::NoPermissions));
    assert_eq!(reply::parse_perms(b"b0"), Err(Error::MissingNul));
    assert_eq!(reply::parse_perms(b"b0\0r1"), Err(Error::MissingNul));
    for bad in [&b"\0"[..], b"x0\0", b"b0\0\0", b"b0\0r\0", b"b\0", b"b70000\0", b"b-1\0", b"B0\0"] {
        assert_eq!(reply::parse_perms(bad), Err(Error::InvalidPermission), "{bad:?}");
    }
}

#[test]
fn directory_edge_cases() {
    assert_eq!(reply::parse_directory(b"").unwrap(), Vec::<String>::new());
    assert_eq!(reply::parse_directory(b"\0").unwrap(), Vec::<String>::new());
    assert_eq!(reply::parse_directory(b"x\0").unwrap(), ["x"]);
    assert_eq!(reply::parse_directory(b"a"), Err(Error::MissingNul));
    assert_eq!(reply::parse_directory(b"a\0b"), Err(Error::MissingNul));
    for bad in [&b"a\0\0b\0"[..], b"a/b\0", b"\xff\0", b"a b\0", b"\0\0"] {
        assert_eq!(reply::parse_directory(bad), Err(Error::MalformedEntry), "{bad:?}");
    }
}

#[test]
fn watch_event_edge_cases() {
    assert_eq!(reply::parse_watch_event(b"/p\0\0").unwrap(), WatchEvent { path: "/p".into(), token: String::new() });
    assert_eq!(reply::parse_watch_event(b"/p\0"), Err(Error::WrongFieldCount));
    assert_eq!(reply::parse_watch_event(b""), Err(Error::WrongFieldCount));
    assert_eq!(reply::parse_watch_event(b"/p\0t\0x\0"), Err(Error::WrongFieldCount));
    assert_eq!(reply::parse_watch_event(b"\0t\0"), Err(Error::MalformedEntry));
    assert_eq!(reply::parse_watch_event(b"/p\0t"), Err(Error::MissingNul));
    assert_eq!(reply::parse_watch_event(b"/p\0\xff\0"), Err(Error::NotUtf8));
    assert_eq!(reply::parse_watch_event(b"\xc3\0t\0"), Err(Error::NotUtf8));
}

#[test]
fn domain_path_edge_cases() {
    assert_eq!(reply::parse_domain_path(b"/local/domain/0").unwrap(), "/local/domain/0");
    assert_eq!(reply::parse_domain_path(b"/local/domain/0/\0"), Err(Error::InvalidPath(PathError::TrailingSlash)));
    assert_eq!(reply::parse_domain_path(b"\0"), Err(Error::InvalidPath(PathError::Empty)));
    assert_eq!(reply::parse_domain_path(b"/\xff\0"), Err(Error::NotUtf8));
}

#[test]
fn read_returns_raw_bytes() {
    let m = msg(MsgType::Read, b"a\0b\0");
    assert_eq!(reply::read(&m).unwrap(), b"a\0b\0");
    let m = msg(MsgType::Read, b"");
    assert_eq!(reply::read(&m).unwrap(), b"");
}
