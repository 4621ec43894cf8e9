//! The network stack: smoltcp over whichever device the platform has
//! (netfront on Xen, virtio-net on QEMU), static IPv4 or DHCP, and the
//! in-kernel services (`echo`, `transfer`) that run on it.

pub mod app;
pub mod client;
pub mod echo;
pub mod pattern;
pub mod profile;
pub mod rr;
pub mod sink;
pub mod stream;
pub mod transfer;

use alloc::vec;
use cohort_boot::cmdline::{CongestionControl, NetOptions};
use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::Device;
use smoltcp::socket::{dhcpv4, tcp, Socket};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpCidr, Ipv4Address, Ipv4Cidr};

// The device traits live below the platform, whose drivers implement them.
pub use netdev::{NetDevice, PathFrames};

/// Interface polls per round at most: enough to send a burst of segments
/// without the rest of the loop in between, few enough that a busy stack
/// still services its device and applications often.
const POLL_BATCH: usize = 32;

pub fn now() -> Instant {
    Instant::from_micros((crate::clock::now_ns() / 1000) as i64)
}

pub struct Stack<D> {
    pub device: D,
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    dhcp: Option<SocketHandle>,
    /// Congestion control of every TCP socket (`net.cc=`).
    congestion: tcp::CongestionControl,
}

impl<D: Device> Stack<D> {
    /// An interface with `mac`, configured from `net` (DHCP when no
    /// `net.ip` is given).
    pub fn new(mut device: D, mac: [u8; 6], net: &NetOptions) -> Stack<D> {
        let config = Config::new(EthernetAddress(mac).into());
        let mut iface = Interface::new(config, &mut device, now());
        let mut sockets = SocketSet::new(vec![]);
        let dhcp = match net.ip {
            Some(cidr) => {
                let addr = Ipv4Address::from_octets(cidr.addr);
                iface.update_ip_addrs(|addrs| {
                    let _ = addrs.push(IpCidr::Ipv4(Ipv4Cidr::new(addr, cidr.prefix)));
                });
                if let Some(gw) = net.gateway {
                    let _ = iface.routes_mut().add_default_ipv4_route(Ipv4Address::from_octets(gw));
                }
                None
            }
            None => Some(sockets.add(dhcpv4::Socket::new())),
        };
        let congestion = match net.cc {
            CongestionControl::None => tcp::CongestionControl::None,
            CongestionControl::Reno => tcp::CongestionControl::Reno,
        };
        Stack { device, iface, sockets, dhcp, congestion }
    }

    /// A round of the interface (smoltcp sends one segment per socket per
    /// poll, so it is polled again while anything changes, up to
    /// `POLL_BATCH` times) and the DHCP client; true when something may
    /// have changed for the sockets.
    pub fn poll(&mut self) -> bool {
        // Sockets the applications added since the last round get the
        // configured congestion control before they send any data (a SYN
        // at most).
        for (_, socket) in self.sockets.iter_mut() {
            if let Socket::Tcp(t) = socket {
                if t.congestion_control() != self.congestion {
                    t.set_congestion_control(self.congestion);
                }
            }
        }
        let changed = profile::time(profile::Part::Poll, || {
            let mut changed = false;
            for _ in 0..POLL_BATCH {
                if self.iface.poll(now(), &mut self.device, &mut self.sockets) == PollResult::None {
                    break;
                }
                changed = true;
            }
            changed
        });
        self.poll_dhcp();
        changed
    }

    fn poll_dhcp(&mut self) {
        let Some(handle) = self.dhcp else { return };
        match self.sockets.get_mut::<dhcpv4::Socket>(handle).poll() {
            Some(dhcpv4::Event::Configured(config)) => {
                log::info!("net: DHCP lease {} (router {:?})", config.address, config.router);
                self.iface.update_ip_addrs(|addrs| {
                    addrs.clear();
                    let _ = addrs.push(IpCidr::Ipv4(config.address));
                });
                match config.router {
                    Some(router) => {
                        let _ = self.iface.routes_mut().add_default_ipv4_route(router);
                    }
                    None => self.iface.routes_mut().remove_default_ipv4_route().map_or((), drop),
                }
            }
            Some(dhcpv4::Event::Deconfigured) => {
                log::warn!("net: DHCP lease lost");
                self.iface.update_ip_addrs(|addrs| addrs.clear());
                self.iface.routes_mut().remove_default_ipv4_route();
            }
            None => {}
        }
    }

    pub fn ipv4(&self) -> Option<Ipv4Cidr> {
        self.iface.ip_addrs().iter().find_map(|a| match a {
            IpCidr::Ipv4(cidr) => Some(*cidr),
            _ => None,
        })
    }

}

impl<D: NetDevice> Stack<D> {
    /// Sleeps until the next event or timer tick, unless smoltcp wants to
    /// run now or the device has work (or is polled).
    pub fn wait(&mut self) {
        if self.device.wants_polling() {
            // Polled channels: give the CPU to whoever else may run on it
            // (a co-resident peer placed on the same CPU, say), never block.
            profile::time(profile::Part::Idle, crate::platform::yield_cpu);
            return;
        }
        let due_now = matches!(self.iface.poll_delay(now(), &self.sockets), Some(d) if d.total_micros() == 0);
        // Frames waiting for room in a full ring are not work we can do:
        // idle until the peer makes room (spinning would keep it from
        // running on a shared CPU).
        if due_now && !self.device.tx_blocked() {
            return;
        }
        if !self.device.prepare_idle() {
            profile::time(profile::Part::Idle, crate::platform::idle);
        }
    }

    /// One round: device housekeeping, then the interface; true when
    /// something may have changed for the sockets.
    pub fn step(&mut self) -> bool {
        profile::time(profile::Part::Service, || self.device.service());
        self.poll()
    }
}
