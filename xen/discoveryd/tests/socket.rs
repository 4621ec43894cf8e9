//! The socket client against a scripted xenstored: replies in pieces, a
//! watch event between request and reply, errors, and the daemon going
//! away.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use discoveryd::store::{SocketStore, Store, StoreError};
use xenstore_wire::{Header, MsgType, HEADER_LEN};

fn message(ty: MsgType, req_id: u32, payload: &[u8]) -> Vec<u8> {
    let h = Header { msg_type: ty, req_id, tx_id: 0, len: payload.len() as u32 };
    let mut out = h.to_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn read_request(s: &mut impl Read) -> (Header, Vec<u8>) {
    let mut h = [0u8; HEADER_LEN];
    s.read_exact(&mut h).unwrap();
    let h = Header::parse(&h).unwrap();
    let mut p = vec![0u8; h.payload_len()];
    s.read_exact(&mut p).unwrap();
    (h, p)
}

/// A xenstored that `script` plays on its first connection, on a thread,
/// at a socket in a fresh directory `<name>-<pid>`; returns a store
/// connected to it, the directory and the thread.
fn scripted_xenstored(name: &str, script: impl FnOnce(UnixStream) + Send + 'static) -> (SocketStore, PathBuf, JoinHandle<()>) {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("socket");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        script(s);
    });
    let store = SocketStore::connect(&path).unwrap();
    (store, dir, server)
}

#[test]
fn replies_in_pieces_events_in_between_and_a_lost_daemon() {
    let (mut store, dir, server) = scripted_xenstored("cohort-xs", |mut s| {
        // read: a watch event first, then the reply in three pieces.
        let (h, p) = read_request(&mut s);
        assert_eq!((h.msg_type, &p[..]), (MsgType::Read, &b"/a\0"[..]));
        s.write_all(&message(MsgType::WatchEvent, 0, b"/local/domain/7\0tok\0")).unwrap();
        let reply = message(MsgType::Read, h.req_id, b"value");
        for piece in reply.chunks(7) {
            s.write_all(piece).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        // A read of a missing node.
        let (h, _) = read_request(&mut s);
        s.write_all(&message(MsgType::Error, h.req_id, b"ENOENT\0")).unwrap();
        // A publish: transaction start, write, set_perms, end.
        let (h, _) = read_request(&mut s);
        assert_eq!(h.msg_type, MsgType::TransactionStart);
        s.write_all(&message(MsgType::TransactionStart, h.req_id, b"9\0")).unwrap();
        for expect in [MsgType::Write, MsgType::SetPerms, MsgType::TransactionEnd] {
            let (h, p) = read_request(&mut s);
            assert_eq!(h.msg_type, expect);
            if expect == MsgType::SetPerms {
                assert_eq!(p, b"/local/domain/0/cohort/peers/7\0n0\0r7\0");
            }
            assert_eq!(h.tx_id, 9, "{expect:?} in the transaction");
            s.write_all(&message(expect, h.req_id, b"OK\0")).unwrap();
        }
        // Then xenstored dies.
    });
    assert_eq!(store.read("/a").unwrap().as_deref(), Some(&b"value"[..]));
    let ev = store.next_event(Duration::ZERO).unwrap().expect("the event that came first");
    assert_eq!((ev.path.as_str(), ev.token.as_str()), ("/local/domain/7", "tok"));
    assert_eq!(store.read("/missing").unwrap(), None);
    store.publish("/local/domain/0/cohort/peers/7", b"v1", 7).unwrap();
    server.join().unwrap();
    assert!(matches!(store.read("/a"), Err(StoreError::Disconnected(_))));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_flood_of_events_collapses_into_one_rescan() {
    use discoveryd::store::{MAX_QUEUED_EVENTS, OVERFLOW_PATH};
    const FLOOD: usize = 3 * MAX_QUEUED_EVENTS;
    let (mut store, dir, server) = scripted_xenstored("cohort-xs-flood", |mut s| {
        // Events between a request and its reply, far more than the queue holds.
        let (h, _) = read_request(&mut s);
        let mut burst = Vec::new();
        for i in 0..FLOOD {
            burst.extend(message(MsgType::WatchEvent, 0, format!("/local/domain/{}\0tok\0", i % 50).as_bytes()));
        }
        s.write_all(&burst).unwrap();
        s.write_all(&message(MsgType::Read, h.req_id, b"value")).unwrap();
        // One more after the reply: it is covered by the rescan.
        s.write_all(&message(MsgType::WatchEvent, 0, b"/local/domain/9\0tok\0")).unwrap();
        let (h, _) = read_request(&mut s);
        s.write_all(&message(MsgType::Read, h.req_id, b"again")).unwrap();
        // Stay connected until the client goes.
        let _ = s.read(&mut [0u8; 1]);
    });
    assert_eq!(store.read("/a").unwrap().as_deref(), Some(&b"value"[..]));
    assert_eq!(store.overflows(), 1);
    // Every event of the flood is dropped: 1024 queued and cleared, the
    // one that overflowed, and all those after it.
    assert_eq!(store.dropped_events(), FLOOD as u64);
    // The next read queues the late event behind the marker: dropped too.
    assert_eq!(store.read("/b").unwrap().as_deref(), Some(&b"again"[..]));
    let ev = store.next_event(Duration::ZERO).unwrap().expect("the overflow event");
    assert_eq!(ev.path, OVERFLOW_PATH);
    assert!(discoveryd::scan::relevant(&ev.path), "an overflow rescans everything");
    assert!(store.next_event(Duration::from_millis(20)).unwrap().is_none(), "nothing else queued");
    assert_eq!(store.dropped_events(), FLOOD as u64 + 1);
    drop(store);
    server.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The owner of a node, as the policy's name and `vm` checks ask for it:
/// the first permission of `XS_GET_PERMS`; a missing node is `None`, a
/// reply without permissions a protocol error.
#[test]
fn owners_come_from_get_perms() {
    let (mut store, dir, server) = scripted_xenstored("cohort-xs-perms", |mut s| {
        for reply in [&b"n0\0r7\0"[..], b"b7\0", b"", b"ENOENT\0"] {
            let (h, p) = read_request(&mut s);
            assert_eq!((h.msg_type, &p[..]), (MsgType::GetPerms, &b"/local/domain/7/name\0"[..]));
            let ty = if reply.starts_with(b"E") { MsgType::Error } else { MsgType::GetPerms };
            s.write_all(&message(ty, h.req_id, reply)).unwrap();
        }
        let _ = s.read(&mut [0u8; 1]);
    });
    assert_eq!(store.owner("/local/domain/7/name"), Ok(Some(0)), "the toolstack's");
    assert_eq!(store.owner("/local/domain/7/name"), Ok(Some(7)), "the guest's own");
    assert!(matches!(store.owner("/local/domain/7/name"), Err(StoreError::Protocol(_))), "no owner");
    assert_eq!(store.owner("/local/domain/7/name"), Ok(None), "missing");
    drop(store);
    server.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
