//! Cohort's network applications, on whatever runs a smoltcp interface
//! for them: the services (TCP and UDP [`echo`], the stream [`sink`] and
//! [`source`]), the measuring clients ([`transfer`], [`stream`],
//! [`maerts`], [`rr`], [`crr`], [`udp_rr`]), [`netbench`],
//! which measures the shared-memory channel against netfront in one run,
//! and [`handover`], the switch between them under load;
//! [`run()`] runs the one `app=` names.
//!
//! Pure and host-tested: the time comes in as a parameter (the clients'
//! `service`) or through [`Clock`], output goes through [`Output`] (the
//! measurement lines, `BENCH` figures and `EVENT` lines of the `figures`
//! crate), and the stack and its device through [`Stack`] and the
//! `netdev` traits. The kernel implements these with its clock, console
//! and smoltcp stack; the host tests with a simulated clock and two smoltcp
//! interfaces joined by an in-memory link.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod client;
pub mod crr;
pub mod echo;
pub mod handover;
pub mod iperf;
pub mod latency;
pub mod maerts;
pub mod netbench;
pub mod pattern;
pub mod profile;
pub mod rr;
pub mod run;
pub mod sink;
pub mod source;
pub mod spread;
pub mod stream;
pub mod transfer;
pub mod udp_rr;

use core::fmt;

use figures::{Event, Figure};
use netdev::NetDevice;
use smoltcp::iface::{Interface, SocketSet};
use smoltcp::wire::Ipv4Cidr;

pub use profile::{Part, Profile, Totals};
pub use run::{run, Settings};

/// Nanoseconds on the clock measurements are taken with.
pub trait Clock {
    fn now_ns(&self) -> u64;
}

/// Where results go: whole lines, for the console.
pub trait Output {
    /// One line, without its newline.
    fn line(&mut self, line: fmt::Arguments<'_>);
    /// A `BENCH {...}` line.
    fn figure(&mut self, figure: &Figure<&str>) {
        self.line(format_args!("{figure}"));
    }
    /// A `EVENT {...}` line.
    fn result(&mut self, event: &Event<&str>) {
        self.line(format_args!("{event}"));
    }
}

/// The smoltcp stack the applications run on: an interface with its
/// sockets over a device, and the loop's two moves (a round of work, an
/// idle wait).
pub trait Stack {
    type Device: NetDevice;
    fn device(&mut self) -> &mut Self::Device;
    fn device_ref(&self) -> &Self::Device;
    /// The interface and its sockets, at once (starting a client takes both).
    fn parts(&mut self) -> (&mut Interface, &mut SocketSet<'static>);
    fn sockets(&mut self) -> &mut SocketSet<'static> {
        self.parts().1
    }
    /// The interface's IPv4 address, once it has one.
    fn ipv4(&self) -> Option<Ipv4Cidr>;
    /// One round: device housekeeping, then the interface; true when
    /// something may have changed for the sockets.
    fn step(&mut self) -> bool;
    /// Waits for the next event or timer (or returns at once when work is
    /// due or the device wants polling).
    fn wait(&mut self);
    /// Where the time goes (the stack charges its parts; the applications
    /// theirs, [`Part::App`]).
    fn profile(&mut self) -> &mut Profile;
}
