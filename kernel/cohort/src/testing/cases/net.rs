//! smoltcp inside the guest: a TCP echo over its loopback device, with the
//! kernel's clock driving smoltcp's timers.
use crate::ensure;
use crate::testing::Outcome;
use alloc::vec;
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{Loopback, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};

const TOTAL: usize = 256 * 1024;
const PORT: u16 = 7;

fn now() -> Instant {
    Instant::from_micros((crate::clock::now_ns() / 1000) as i64)
}

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 11)) as u8
}

pub fn smoltcp_loopback_tcp() -> Outcome {
    let mut device = Loopback::new(Medium::Ethernet);
    let config = Config::new(EthernetAddress([0x02, 0, 0, 0, 0, 1]).into());
    let mut iface = Interface::new(config, &mut device, now());
    let localhost = IpAddress::v4(127, 0, 0, 1);
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(localhost, 8));
    });
    let socket = || tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 32 * 1024]), tcp::SocketBuffer::new(vec![0; 32 * 1024]));
    let mut sockets = SocketSet::new(vec![]);
    let server = sockets.add(socket());
    let client = sockets.add(socket());
    sockets.get_mut::<tcp::Socket>(server).listen(PORT).map_err(|e| alloc::format!("listen: {e}"))?;
    sockets
        .get_mut::<tcp::Socket>(client)
        .connect(iface.context(), (localhost, PORT), 49152)
        .map_err(|e| alloc::format!("connect: {e}"))?;

    let data: alloc::vec::Vec<u8> = (0..TOTAL).map(pattern).collect();
    let (mut sent, mut echoed) = (0, 0);
    let mut relay = vec![0u8; 8 * 1024];
    let mut back = vec![0u8; 8 * 1024];
    let deadline = crate::clock::now_ns() + 60_000_000_000;
    while echoed < TOTAL {
        ensure!(crate::clock::now_ns() < deadline, "stalled: sent {sent}, echoed {echoed} of {TOTAL}");
        iface.poll(now(), &mut device, &mut sockets);

        let c = sockets.get_mut::<tcp::Socket>(client);
        if c.can_send() && sent < TOTAL {
            sent += c.send_slice(&data[sent..]).map_err(|e| alloc::format!("send: {e}"))?;
        }
        if c.can_recv() {
            let n = c.recv_slice(&mut back).map_err(|e| alloc::format!("recv: {e}"))?;
            ensure!(back[..n] == data[echoed..echoed + n], "echo differs in bytes {echoed}..{}", echoed + n);
            echoed += n;
        }

        let s = sockets.get_mut::<tcp::Socket>(server);
        if s.can_recv() {
            let room = (s.send_capacity() - s.send_queue()).min(relay.len());
            let n = s.recv_slice(&mut relay[..room]).map_err(|e| alloc::format!("server recv: {e}"))?;
            let queued = s.send_slice(&relay[..n]).map_err(|e| alloc::format!("server send: {e}"))?;
            ensure!(queued == n, "server queued {queued} of {n}");
        }
    }
    ensure!(sent == TOTAL, "sent {sent} of {TOTAL}");
    sockets.get_mut::<tcp::Socket>(client).close();
    Ok(())
}

/// The echo service and the transfer client of `app=`, on one loopback
/// interface: 2 MiB out and back, compared by SHA-256.
pub fn echo_transfer_loopback() -> Outcome {
    use crate::net::Stack;
    use apps::{echo::Echo, transfer::Transfer};
    use cohort_boot::cmdline::{Ipv4Cidr, NetOptions};
    let net = NetOptions { ip: Some(Ipv4Cidr { addr: [127, 0, 0, 1], prefix: 8 }), ..NetOptions::default() };
    let mut stack = Stack::new(Loopback::new(Medium::Ethernet), [2, 0, 0, 0, 0, 1], &net);
    let mut echo = Echo::new(&mut stack.sockets, 7).map_err(alloc::string::String::from)?;
    let total = 2 << 20;
    let mut transfer = Transfer::start(&mut stack.iface, &mut stack.sockets, [127, 0, 0, 1], 7, total, 49152)?;
    let deadline = crate::clock::now_ns() + 120_000_000_000;
    while !transfer.done() {
        ensure!(crate::clock::now_ns() < deadline, "stalled at {:?}", transfer.progress());
        stack.poll();
        echo.service(&mut stack.sockets);
        transfer.service(&mut stack.sockets, crate::clock::now_ns())?;
    }
    ensure!(echo.tcp_bytes == total, "echo relayed {} of {total} bytes", echo.tcp_bytes);
    let report = transfer.report(&mut stack.sockets);
    ensure!(report.bytes == total && report.matches(), "sha256 {} vs {}", report.sent_sha256, report.received_sha256);
    Ok(())
}

/// The stream sink with the TCP_STREAM client, and TCP_RR against the
/// echo, on one loopback interface: the byte count and SHA-256 the sink
/// reports match what was sent; every transaction completes.
pub fn stream_and_rr_loopback() -> Outcome {
    use crate::net::Stack;
    use apps::{echo::Echo, pattern::CheckKind, rr::Rr, sink::Sink, stream::Stream};
    use cohort_boot::cmdline::{Ipv4Cidr, NetOptions};
    let net = NetOptions { ip: Some(Ipv4Cidr { addr: [127, 0, 0, 1], prefix: 8 }), ..NetOptions::default() };
    let mut stack = Stack::new(Loopback::new(Medium::Ethernet), [2, 0, 0, 0, 0, 1], &net);
    let mut echo = Echo::new(&mut stack.sockets, 7).map_err(alloc::string::String::from)?;
    let mut sink = Sink::new(&mut stack.sockets, 9);
    let total = 1 << 20;
    let deadline = crate::clock::now_ns() + 120_000_000_000;
    // Both checks: SHA-256, and the fast one the stream asks for with its
    // first 8 bytes (which the sink must neither count nor check).
    for (i, kind) in [CheckKind::Sha256, CheckKind::Fast, CheckKind::Count].into_iter().enumerate() {
        let mut stream = Stream::start(&mut stack.iface, &mut stack.sockets, [127, 0, 0, 1], 9, total, kind, 49152 + i as u16)?;
        while !stream.done() {
            ensure!(crate::clock::now_ns() < deadline, "stream stalled at {} bytes", stream.sent());
            stack.poll();
            sink.service(&mut stack.sockets);
            stream.service(&mut stack.sockets, crate::clock::now_ns())?;
        }
        let report = stream.finish(&mut stack.sockets);
        let digest_len = match kind {
            CheckKind::Sha256 => 64,
            CheckKind::Fast => 16,
            CheckKind::Count => 1,
        };
        ensure!(
            report.bytes == total && report.matches() && report.sink_digest.len() == digest_len,
            "{kind:?}: sink says {} bytes {}, sent {}",
            report.sink_bytes,
            report.sink_digest,
            report.sent_digest
        );
    }
    ensure!(sink.streams == 3 && sink.bytes == 3 * total, "sink counted {} streams, {} bytes", sink.streams, sink.bytes);
    let mut rr = Rr::start(&mut stack.iface, &mut stack.sockets, [127, 0, 0, 1], 7, 200, 32, 49160)?;
    while !rr.done() {
        ensure!(crate::clock::now_ns() < deadline, "rr stalled at {:?}", rr.progress());
        stack.poll();
        echo.service(&mut stack.sockets);
        rr.service(&mut stack.sockets, crate::clock::now_ns())?;
    }
    let r = rr.finish(&mut stack.sockets);
    ensure!(
        r.transactions == 200 && r.p50_us > 0.0 && r.p99_us >= r.p50_us,
        "rr report {} transactions, p50 {} p99 {}",
        r.transactions,
        r.p50_us,
        r.p99_us
    );
    ensure!(echo.tcp_bytes == 200 * 32, "echo relayed {} bytes", echo.tcp_bytes);
    Ok(())
}
