//! The iperf3 crate's client over std sockets, to check it against a real
//! `iperf3 -s` on a host:
//!
//! ```sh
//! iperf3 -s -p 15202 -1 &
//! cargo run -p iperf3 --example std_client -- 127.0.0.1:15202 -t 2 -P 2 -R
//! ```
//!
//! Options: `-t S`, `-n BYTES`, `-k BLOCKS`, `-l LEN`, `-P N`, `-R`,
//! `--bidir`, `-u`, `-b BIT/S`, `-O S`, `--udp-counters-64bit`.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use iperf3::client::{Client, ClientAction, ClientConfig};
use iperf3::proto::Cookie;
use iperf3::{Params, Protocol};

enum Sock {
    Tcp { s: TcpStream, outq: Vec<u8>, eof: bool },
    Udp(UdpSocket),
}

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:5201".into());
    let mut p = Params::tcp(10);
    let mut udp_len = None;
    while let Some(a) = args.next() {
        let mut num = || args.next().expect("value").parse::<u64>().expect("number");
        match a.as_str() {
            "-t" => p.time_s = num() as u32,
            "-n" => (p.bytes, p.time_s) = (num(), 0),
            "-k" => (p.blocks, p.time_s) = (num(), 0),
            "-l" => udp_len = Some(num() as u32),
            "-P" => p.parallel = num() as u16,
            "-O" => p.omit_s = num() as u32,
            "-b" => p.bandwidth = num(),
            "-R" => p.reverse = true,
            "--bidir" => p.bidirectional = true,
            "-u" => p.protocol = Protocol::Udp,
            "--udp-counters-64bit" => p.udp_counters_64bit = true,
            other => panic!("unknown option {other}"),
        }
    }
    if p.protocol == Protocol::Udp {
        p.len = udp_len.unwrap_or(1460);
        if p.bandwidth == 0 {
            p.bandwidth = iperf3::proto::DEFAULT_UDP_RATE;
        }
    } else if let Some(l) = udp_len {
        p.len = l;
    }
    let seed = Instant::now().elapsed().as_nanos() as u64 ^ u64::from(std::process::id());
    let mut random = [0u8; 36];
    for (i, b) in random.iter_mut().enumerate() {
        *b = (seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64 * 1442695040888963407) >> 33) as u8;
    }
    let t0 = Instant::now();
    let now = || t0.elapsed().as_micros() as u64;
    let mut client: Client<usize> = Client::new(ClientConfig::new(p.clone(), Cookie::from_random(&random)), now());
    let mut socks: Vec<Option<Sock>> = Vec::new();
    let control = TcpStream::connect(&addr).expect("connect");
    control.set_nonblocking(true).unwrap();
    control.set_nodelay(true).unwrap();
    socks.push(Some(Sock::Tcp { s: control, outq: Vec::new(), eof: false }));
    client.control_connected(0, now());
    let mut buf = vec![0u8; 256 * 1024];
    let deadline = Duration::from_secs(u64::from(p.time_s) + u64::from(p.omit_s) + 60);
    while client.phase() != iperf3::ClientPhase::Finished {
        assert!(t0.elapsed() < deadline, "stuck in {:?}", client.phase());
        let t = now();
        let mut moved = false;
        for (id, slot) in socks.iter_mut().enumerate() {
            let Some(sock) = slot.as_mut() else { continue };
            let mut gone = false;
            match sock {
                Sock::Tcp { s, outq, eof } => {
                    for _ in 0..16 {
                        if outq.is_empty() {
                            let n = client.send(id, &mut buf, t);
                            outq.extend_from_slice(&buf[..n]);
                        }
                        if outq.is_empty() {
                            break;
                        }
                        match s.write(outq) {
                            Ok(n) => {
                                moved = true;
                                outq.drain(..n);
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(_) => break,
                        }
                    }
                    for _ in 0..16 {
                        match s.read(&mut buf) {
                            Ok(0) => {
                                *eof = true;
                                break;
                            }
                            Ok(n) => {
                                moved = true;
                                let mut off = 0;
                                while off < n {
                                    let k = client.recv(id, &buf[off..n], t);
                                    if k == 0 {
                                        break;
                                    }
                                    off += k;
                                }
                            }
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(_) => {
                                *eof = true;
                                break;
                            }
                        }
                    }
                    if *eof && outq.is_empty() {
                        client.closed(id, t);
                        gone = true;
                    }
                }
                Sock::Udp(u) => {
                    for _ in 0..256 {
                        let Ok(n) = u.recv(&mut buf) else { break };
                        moved = true;
                        client.udp_recv(id, &buf[..n], t);
                    }
                    for _ in 0..256 {
                        let Some(n) = client.udp_send(id, &mut buf, t) else {
                            break;
                        };
                        moved = true;
                        let _ = u.send(&buf[..n]);
                    }
                }
            }
            if gone {
                *slot = None;
            }
        }
        while let Some(a) = client.poll(t) {
            moved = true;
            match a {
                ClientAction::ConnectTcp => {
                    let s = TcpStream::connect(&addr).expect("data connect");
                    s.set_nonblocking(true).unwrap();
                    socks.push(Some(Sock::Tcp { s, outq: Vec::new(), eof: false }));
                    client.stream_connected(socks.len() - 1, t);
                }
                ClientAction::OpenUdp => {
                    let u = UdpSocket::bind("0.0.0.0:0").unwrap();
                    u.connect(&addr).unwrap();
                    u.set_nonblocking(true).unwrap();
                    socks.push(Some(Sock::Udp(u)));
                    client.udp_opened(socks.len() - 1, t);
                }
                ClientAction::Close(h) | ClientAction::Abort(h) => {
                    // Flush the control connection's last bytes first.
                    if let Some(Some(Sock::Tcp { s, outq, .. })) = socks.get_mut(h) {
                        let _ = s.set_nonblocking(false);
                        let _ = s.write_all(outq);
                    }
                    socks[h] = None;
                }
            }
        }
        if !moved {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    match client.outcome() {
        Some(Ok(r)) => {
            println!(
                "std_client: {:?}, {} s: sent {} B, received {} B; server received {} B; upload {:.2} Mbit/s, download {:.2} Mbit/s",
                p.protocol,
                r.duration_us as f64 / 1e6,
                r.bytes_sent(),
                r.bytes_received(),
                r.server_received(),
                r.upload_bps() / 1e6,
                r.download_bps() / 1e6
            );
            for s in &r.streams {
                println!("  stream {} client_sends={} bytes={} server={:?}", s.id, s.client_sends, s.bytes, s.server);
            }
        }
        Some(Err(e)) => {
            println!("std_client: error - {e}");
            std::process::exit(1);
        }
        None => unreachable!(),
    }
}
