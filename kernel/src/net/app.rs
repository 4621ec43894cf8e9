//! Running the network applications of `app=` on a device.

use super::echo::Echo;
use super::transfer::Transfer;
use super::{NetDevice, Stack};
use crate::bench::Figure;
use alloc::format;
use alloc::string::String;
use cohort_boot::cmdline::{App, BenchClock, NetOptions};

use crate::clock::{sleep, SECOND};
/// How long to wait for DHCP or for the peer to come up.
const SETUP_TIMEOUT: u64 = 60 * SECOND;
const PROGRESS_EVERY: u64 = 5 * SECOND;

/// Runs `app` on `device`; `stop` says when the platform asks the guest to
/// shut down. The device is closed cleanly before returning.
pub fn run<D: NetDevice>(
    app: App,
    device: D,
    net: &NetOptions,
    clock: BenchClock,
    stop: &mut dyn FnMut() -> bool,
) -> Result<(), String> {
    let mac = device.mac();
    log::info!(
        "net: {} device, MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        device.kind(),
        mac[0],
        mac[1],
        mac[2],
        mac[3],
        mac[4],
        mac[5]
    );
    let mut stack = Stack::new(device, mac, net);
    let address = wait_for_address(&mut stack)?;
    log::info!("net: address {address} ({})", if net.ip.is_some() { "static" } else { "DHCP" });
    let result = match app {
        App::Echo => serve_echo(&mut stack, net.port, stop),
        App::Transfer => transfer(&mut stack, net, clock),
    };
    let closed = stack.device.shutdown();
    match &closed {
        Ok(how) => log::info!("net: {how}"),
        Err(e) => log::error!("net: closing the device failed: {e}"),
    }
    result.and(closed.map(drop))
}

fn wait_for_address<D: NetDevice>(stack: &mut Stack<D>) -> Result<smoltcp::wire::Ipv4Cidr, String> {
    let deadline = crate::clock::now_ns() + SETUP_TIMEOUT;
    loop {
        stack.device.service();
        stack.poll();
        if let Some(address) = stack.ipv4() {
            return Ok(address);
        }
        if crate::clock::now_ns() > deadline {
            return Err("no IPv4 address: give net.ip=A.B.C.D/N or run a DHCP server".into());
        }
        stack.wait();
    }
}

fn serve_echo<D: NetDevice>(stack: &mut Stack<D>, port: u16, stop: &mut dyn FnMut() -> bool) -> Result<(), String> {
    let mut echo = Echo::new(&mut stack.sockets, port)?;
    log::info!("net: TCP and UDP echo on port {port}");
    let mut next_report = crate::clock::now_ns() + PROGRESS_EVERY;
    let mut reported = (0, 0);
    loop {
        stack.device.service();
        let polled = stack.poll();
        let moved = echo.service(&mut stack.sockets);
        if crate::clock::now_ns() > next_report {
            next_report += PROGRESS_EVERY;
            if (echo.tcp_bytes, echo.udp_packets) != reported {
                reported = (echo.tcp_bytes, echo.udp_packets);
                log::info!(
                    "echo: {} TCP bytes, {} UDP packets; {}",
                    echo.tcp_bytes,
                    echo.udp_packets,
                    stack.device.counters()
                );
            }
        }
        if stop() {
            log::info!("echo: shutdown requested after {} TCP bytes, {} UDP packets", echo.tcp_bytes, echo.udp_packets);
            return Ok(());
        }
        if !polled && !moved {
            stack.wait();
        }
    }
}

fn transfer<D: NetDevice>(stack: &mut Stack<D>, net: &NetOptions, clock: BenchClock) -> Result<(), String> {
    let peer = net.peer.ok_or("app=transfer needs net.peer=A.B.C.D")?;
    let [a, b, c, d] = peer;
    log::info!("transfer: {} bytes to {a}.{b}.{c}.{d}:{} and back", net.bytes, net.port);
    // The peer may still be booting: retry refused connections until the
    // setup timeout.
    let deadline = crate::clock::now_ns() + SETUP_TIMEOUT;
    let mut attempt: u16 = 0;
    let mut transfer = loop {
        let mut t = Transfer::start(&mut stack.iface, &mut stack.sockets, peer, net.port, net.bytes, 49152 + attempt)?;
        let connected = loop {
            stack.device.service();
            stack.poll();
            match t.service(&mut stack.sockets) {
                Ok(_) if t.connected_ns.is_some() => break true,
                Ok(_) if crate::clock::now_ns() > deadline => return Err("peer never accepted".into()),
                Ok(_) => stack.wait(),
                Err(_) => break false,
            }
        };
        if connected {
            break t;
        }
        // Refused: give the socket and its buffers back before retrying.
        t.discard(&mut stack.sockets);
        attempt += 1;
        sleep(SECOND / 2);
    };
    let mut next_report = crate::clock::now_ns() + PROGRESS_EVERY;
    while !transfer.done() {
        stack.device.service();
        let polled = stack.poll();
        let moved = transfer.service(&mut stack.sockets)?;
        if crate::clock::now_ns() > next_report {
            next_report += PROGRESS_EVERY;
            let (sent, received, total) = transfer.progress();
            log::info!("transfer: sent {sent}, echoed {received} of {total} bytes");
        }
        if !polled && !moved {
            stack.wait();
        }
    }
    // Finish the close handshake (bounded), so the echo side is not left
    // waiting for our last ACK.
    let deadline = crate::clock::now_ns() + 2 * SECOND;
    while !transfer.closed(&mut stack.sockets) && crate::clock::now_ns() < deadline {
        stack.device.service();
        if !stack.poll() {
            stack.wait();
        }
    }
    let report = transfer.report();
    crate::println!(
        "transfer: {} bytes echoed in {:.3} s, {:.2} Mbit/s; sha256 sent {} received {} ({})",
        report.bytes,
        report.seconds,
        report.mbit_per_s(),
        report.sent_sha256,
        report.received_sha256,
        if report.matches() { "match" } else { "MISMATCH" }
    );
    crate::println!("transfer: {}", stack.device.counters());
    let path = stack.device.kind();
    crate::println!("{}", Figure { name: "net.tcp_echo_throughput", path, value: report.mbit_per_s(), unit: "Mbit/s", clock });
    for (name, value, unit) in stack.device.figures() {
        crate::println!("{}", Figure { name, path, value, unit, clock });
    }
    if !report.matches() {
        return Err(format!("echoed data differs: sha256 {} != {}", report.received_sha256, report.sent_sha256));
    }
    Ok(())
}
