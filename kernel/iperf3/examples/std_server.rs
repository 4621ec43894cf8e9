//! The iperf3 crate's server over std sockets, to check it against a real
//! `iperf3 -c` on a host:
//!
//! ```sh
//! cargo run -p iperf3 --example std_server -- 127.0.0.1:15201 [tests]
//! iperf3 -c 127.0.0.1 -p 15201 -t 2 -R
//! ```
//!
//! It serves `tests` tests (default: forever), then exits. Single-threaded,
//! non-blocking; every event goes to stderr.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use iperf3::server::{Accept, Action, Server, ServerConfig, ACCESS_DENIED};
use iperf3::Event;

struct Conn {
    s: TcpStream,
    /// Bytes read but not yet consumed by the server.
    inq: Vec<u8>,
    /// Bytes the server gave that the socket did not take yet.
    outq: Vec<u8>,
    closing: bool,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:15201".into());
    let tests: u64 = args.next().map_or(u64::MAX, |t| t.parse().expect("tests"));
    let listener = TcpListener::bind(&addr).expect("bind tcp");
    listener.set_nonblocking(true).unwrap();
    let udp = UdpSocket::bind(&addr).expect("bind udp");
    udp.set_nonblocking(true).unwrap();
    eprintln!("std_server: listening on {addr}");
    let t0 = Instant::now();
    let mut server: Server<u64> = Server::new(ServerConfig::default());
    let mut conns: HashMap<u64, Conn> = HashMap::new();
    let mut next = 1u64;
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = 0;
    while done < tests {
        let now = t0.elapsed().as_micros() as u64;
        let mut moved = false;
        while let Ok((s, peer)) = listener.accept() {
            moved = true;
            s.set_nonblocking(true).unwrap();
            s.set_nodelay(true).unwrap();
            let id = next;
            next += 1;
            match server.accept(id, now) {
                Accept::Deny => {
                    eprintln!("std_server: {peer} refused (busy)");
                    let mut s = s;
                    let _ = s.write(&[ACCESS_DENIED]);
                }
                a => {
                    eprintln!("std_server: {peer} accepted as {a:?} (conn {id})");
                    conns.insert(id, Conn { s, inq: Vec::new(), outq: Vec::new(), closing: false });
                }
            }
        }
        let ids: Vec<u64> = conns.keys().copied().collect();
        for id in ids {
            let c = conns.get_mut(&id).unwrap();
            let mut gone = false;
            if !c.closing {
                for _ in 0..16 {
                    match c.s.read(&mut buf) {
                        Ok(0) => {
                            gone = true;
                            break;
                        }
                        Ok(n) => {
                            moved = true;
                            c.inq.extend_from_slice(&buf[..n]);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => {
                            gone = true;
                            break;
                        }
                    }
                }
                let mut off = 0;
                while off < c.inq.len() {
                    let n = server.recv(id, &c.inq[off..], now);
                    if n == 0 {
                        break;
                    }
                    off += n;
                }
                c.inq.drain(..off);
            }
            for _ in 0..16 {
                if c.outq.is_empty() && !c.closing {
                    let n = server.send(id, &mut buf, now);
                    c.outq.extend_from_slice(&buf[..n]);
                }
                if c.outq.is_empty() {
                    break;
                }
                match c.s.write(&c.outq) {
                    Ok(n) => {
                        moved = true;
                        c.outq.drain(..n);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        gone = true;
                        break;
                    }
                }
            }
            if c.closing && c.outq.is_empty() {
                let _ = c.s.shutdown(Shutdown::Both);
                conns.remove(&id);
            } else if gone {
                server.closed(id, now);
                conns.remove(&id);
            }
        }
        for _ in 0..256 {
            let Ok((n, from)) = udp.recv_from(&mut buf) else {
                break;
            };
            moved = true;
            if let Some(reply) = server.udp_recv(from, &buf[..n], now) {
                let _ = udp.send_to(&reply, from);
            }
        }
        for _ in 0..256 {
            let Some((to, n)) = server.udp_send(&mut buf, now) else {
                break;
            };
            moved = true;
            let _ = udp.send_to(&buf[..n], to);
        }
        while let Some(a) = server.poll(now) {
            moved = true;
            let Some(c) = conns.get_mut(&a.handle()) else {
                continue;
            };
            match a {
                Action::Close(_) => c.closing = true,
                Action::Abort(_) => {
                    conns.remove(&a.handle());
                }
                Action::Deny(_) => {
                    c.outq.push(ACCESS_DENIED);
                    c.closing = true;
                }
            }
        }
        while let Some(e) = server.take_event() {
            match &e {
                Event::Finished(s) => {
                    done += 1;
                    eprintln!(
                        "std_server: finished: received {} B, sent {} B in {} us, UDP lost {} of {}",
                        s.bytes_received, s.bytes_sent, s.duration_us, s.udp_lost, s.udp_packets
                    );
                }
                Event::Failed(f) => {
                    done += 1;
                    eprintln!("std_server: failed: {f:?}");
                }
                e => eprintln!("std_server: {e:?}"),
            }
        }
        if !moved {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    // Let the last bytes and closes go out.
    std::thread::sleep(Duration::from_millis(100));
    eprintln!("std_server: idle {}, tracked {}", server.is_idle(), server.tracked());
}
