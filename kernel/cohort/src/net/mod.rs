//! The network stack: smoltcp over whichever device the platform has
//! (netfront and channels on Xen, virtio-net on QEMU), static IPv4 or
//! DHCP, and the loop's idle that calls the platform. The applications
//! (the `apps` crate) run on it with this kernel's clock and console.

use alloc::vec;
use apps::{Part, Profile, Settings};
use cohort_boot::cmdline::{App, BenchClock, CongestionControl, NetOptions};
use core::fmt;
use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::Device;
use smoltcp::socket::{dhcpv4, tcp, Socket};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpCidr, Ipv4Address, Ipv4Cidr};

// The device traits live below the platform, whose drivers implement them.
pub use netdev::NetDevice;

/// Interface polls per round at most: enough to send a burst of segments
/// without the rest of the loop in between, few enough that a busy stack
/// still services its device and applications often.
const POLL_BATCH: usize = 32;

pub fn now() -> Instant {
    Instant::from_micros((crate::clock::now_ns() / 1000) as i64)
}

/// The kernel's clock, for the applications.
pub struct KernelClock;

impl apps::Clock for KernelClock {
    fn now_ns(&self) -> u64 {
        crate::clock::now_ns()
    }
}

/// The console, for the applications' lines.
pub struct Console;

impl apps::Output for Console {
    fn line(&mut self, line: fmt::Arguments<'_>) {
        crate::println!("{line}");
    }
}

/// Runs `app` on `device`; `stop` says when the platform asks the guest to
/// shut down. The device is closed cleanly before returning.
pub fn run<D: NetDevice>(
    app: App,
    device: D,
    net: &NetOptions,
    clock: BenchClock,
    stop: &mut dyn FnMut() -> bool,
) -> Result<(), alloc::string::String> {
    let mac = device.mac();
    let mut stack = Stack::new(device, mac, net);
    apps::run(app, &mut stack, &Settings { net: *net, clock }, &KernelClock, &mut Console, stop)
}

pub struct Stack<D> {
    pub device: D,
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    dhcp: Option<SocketHandle>,
    /// Congestion control of every TCP socket (`net.cc=`).
    congestion: tcp::CongestionControl,
    profile: Profile,
}

/// Runs `f`, charging its time to `part` of `profile`.
fn timed<T>(profile: &mut Profile, part: Part, f: impl FnOnce() -> T) -> T {
    let start = crate::clock::now_ns();
    let out = f();
    profile.add(part, crate::clock::now_ns().saturating_sub(start));
    out
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
        Stack { device, iface, sockets, dhcp, congestion, profile: Profile::default() }
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
        let Stack { iface, device, sockets, profile, .. } = self;
        let changed = timed(profile, Part::Poll, || {
            let mut changed = false;
            for _ in 0..POLL_BATCH {
                if iface.poll(now(), device, sockets) == PollResult::None {
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
            timed(&mut self.profile, Part::Idle, crate::platform::yield_cpu);
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
            timed(&mut self.profile, Part::Idle, crate::platform::idle);
        }
    }

    /// One round: device housekeeping, then the interface; true when
    /// something may have changed for the sockets.
    pub fn step(&mut self) -> bool {
        timed(&mut self.profile, Part::Service, || self.device.service());
        self.poll()
    }
}

impl<D: NetDevice> apps::Stack for Stack<D> {
    type Device = D;

    fn device(&mut self) -> &mut D {
        &mut self.device
    }

    fn device_ref(&self) -> &D {
        &self.device
    }

    fn parts(&mut self) -> (&mut Interface, &mut SocketSet<'static>) {
        (&mut self.iface, &mut self.sockets)
    }

    fn ipv4(&self) -> Option<Ipv4Cidr> {
        Stack::ipv4(self)
    }

    fn step(&mut self) -> bool {
        Stack::step(self)
    }

    fn wait(&mut self) {
        Stack::wait(self)
    }

    fn profile(&mut self) -> &mut Profile {
        &mut self.profile
    }
}
