//! TCP and UDP echo on one port: what the harness's 16 MiB checks and the
//! other guest's `transfer` talk to.

use alloc::vec;
use alloc::vec::Vec;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};

/// Concurrent TCP connections served; each listening socket takes one.
const TCP_SOCKETS: usize = 4;
/// A connection whose peer stops answering (e.g. a destroyed guest, whose
/// last ACK never comes) is aborted after this, freeing its socket; idle
/// connections are probed with keep-alives so a dead peer is noticed too.
const PEER_TIMEOUT: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(20);
const KEEP_ALIVE: smoltcp::time::Duration = smoltcp::time::Duration::from_secs(5);
const TCP_BUFFER: usize = 64 * 1024;
const UDP_PACKETS: usize = 32;

pub struct Echo {
    port: u16,
    tcp: Vec<SocketHandle>,
    udp: SocketHandle,
    relay: Vec<u8>,
    pub tcp_bytes: u64,
    pub udp_packets: u64,
}

impl Echo {
    pub fn new(sockets: &mut SocketSet<'static>, port: u16) -> Result<Echo, &'static str> {
        let tcp = (0..TCP_SOCKETS)
            .map(|_| {
                let rx = tcp::SocketBuffer::new(vec![0; TCP_BUFFER]);
                let tx = tcp::SocketBuffer::new(vec![0; TCP_BUFFER]);
                sockets.add(tcp::Socket::new(rx, tx))
            })
            .collect();
        let meta = || vec![udp::PacketMetadata::EMPTY; UDP_PACKETS];
        let udp = udp::Socket::new(
            udp::PacketBuffer::new(meta(), vec![0; UDP_PACKETS * 1500]),
            udp::PacketBuffer::new(meta(), vec![0; UDP_PACKETS * 1500]),
        );
        let udp = sockets.add(udp);
        sockets.get_mut::<udp::Socket>(udp).bind(port).map_err(|_| "cannot bind the UDP echo port")?;
        let mut echo = Echo { port, tcp, udp, relay: vec![0; 16 * 1024], tcp_bytes: 0, udp_packets: 0 };
        // Listen now, so a connection arriving before the first round is
        // not refused.
        echo.service(sockets);
        Ok(echo)
    }

    /// Moves whatever can be echoed now; true if anything moved.
    pub fn service(&mut self, sockets: &mut SocketSet<'static>) -> bool {
        let mut moved = false;
        for &handle in &self.tcp {
            let socket = sockets.get_mut::<tcp::Socket>(handle);
            if !socket.is_open() {
                // Closed or TIME-WAIT: serve the next connection.
                if socket.listen(self.port).is_ok() {
                    socket.set_timeout(Some(PEER_TIMEOUT));
                    socket.set_keep_alive(Some(KEEP_ALIVE));
                }
                continue;
            }
            while socket.can_recv() {
                let room = (socket.send_capacity() - socket.send_queue()).min(self.relay.len());
                if room == 0 {
                    break;
                }
                let Ok(n) = socket.recv_slice(&mut self.relay[..room]) else { break };
                if n == 0 {
                    break;
                }
                // Cannot fail short: `room` bytes of send buffer are free.
                let _ = socket.send_slice(&self.relay[..n]);
                self.tcp_bytes += n as u64;
                moved = true;
            }
            // The client finished sending and has everything back: close.
            if socket.state() == tcp::State::CloseWait && socket.send_queue() == 0 {
                socket.close();
                moved = true;
            }
        }
        let udp = sockets.get_mut::<udp::Socket>(self.udp);
        while udp.can_recv() && udp.can_send() {
            let Ok((n, meta)) = udp.recv_slice(&mut self.relay) else { break };
            let _ = udp.send_slice(&self.relay[..n], meta.endpoint);
            self.udp_packets += 1;
            moved = true;
        }
        moved
    }
}
