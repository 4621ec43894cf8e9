//! What the applications' host tests share: a simulated clock that only
//! moves when the world says so, the printed lines, and a world of two
//! smoltcp interfaces joined by in-memory wires, whose local end is the
//! `apps::Stack` the application under test runs on and whose remote end
//! runs its counterpart (the echo and sink, or clients).
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;

use apps::echo::Echo;
use apps::sink::Sink;
use apps::{Clock, Output, Part, Profile, Settings};
use cohort_boot::cmdline::{BenchClock, Ipv4Cidr as CmdCidr, NetOptions};
use figures::{Event, Figure};
use netdev::{Detection, NetDevice, PathFrames, Paths, TcpSent, TcpSentTracker};
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr, Ipv4Cidr};

pub const US: u64 = 1_000;
pub const MS: u64 = 1_000_000;
pub const SECOND: u64 = 1_000_000_000;
/// Simulated time each round of the world takes.
pub const STEP_NS: u64 = 10 * US;
/// The longest an idle wait lets time jump.
const MAX_IDLE_NS: u64 = 100 * MS;

pub const LOCAL: [u8; 4] = [10, 0, 0, 1];
pub const REMOTE: [u8; 4] = [10, 0, 0, 2];
pub const LOCAL_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
pub const REMOTE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

/// The simulated clock, shared by everything in a world.
#[derive(Clone, Default)]
pub struct SimClock(Rc<Cell<u64>>);

impl SimClock {
    pub fn now(&self) -> u64 {
        self.0.get()
    }

    pub fn advance(&self, ns: u64) {
        self.0.set(self.0.get() + ns);
    }

    pub fn instant(&self) -> Instant {
        Instant::from_micros((self.now() / 1000) as i64)
    }
}

impl Clock for SimClock {
    fn now_ns(&self) -> u64 {
        self.now()
    }
}

/// The lines an application printed, as the console would show them.
#[derive(Default)]
pub struct Captured {
    pub lines: Vec<String>,
}

impl Output for Captured {
    fn line(&mut self, line: fmt::Arguments<'_>) {
        let mut s = String::new();
        fmt::write(&mut s, line).expect("a line that formats (a figure or result too long?)");
        assert!(!s.contains('\n'), "one line at a time: {s:?}");
        self.lines.push(s);
    }
}

impl Captured {
    /// Every `EVENT` line, read back as the harness reads it.
    pub fn results(&self) -> Vec<Event<String>> {
        self.lines
            .iter()
            .filter_map(|l| figures::event_json_in(l))
            .map(|json| serde_json::from_str(json).unwrap_or_else(|e| panic!("EVENT {json}: {e}")))
            .collect()
    }

    /// Every `BENCH` line, read back.
    pub fn figures(&self) -> Vec<Figure<String>> {
        self.lines
            .iter()
            .filter_map(|l| figures::json_in(l))
            .map(|json| serde_json::from_str(json).unwrap_or_else(|e| panic!("BENCH {json}: {e}")))
            .collect()
    }

    /// The figure named `name`, its value (panics if missing or repeated).
    pub fn figure(&self, name: &str, path: &str) -> f64 {
        let found: Vec<Figure<String>> = self.figures().into_iter().filter(|f| f.name == name && f.path == path).collect();
        assert_eq!(found.len(), 1, "figure {name} over {path}: {found:?}\n{}", self.text());
        assert_eq!(found[0].clock, "virtual");
        found[0].value
    }

    /// The figures of where each measured repetition's time went, over
    /// `path`: checks there is one set per repetition (`reps`), its shares
    /// add up to 100% and its busy time per frame is positive. The values
    /// of each figure, one per repetition.
    pub fn cost_figures(&self, path: &str, reps: usize) -> Vec<(&'static str, Vec<f64>)> {
        let figures = self.figures();
        let of = |name: &'static str, unit: &str| {
            let found: Vec<&Figure<String>> = figures.iter().filter(|f| f.name == name).collect();
            assert_eq!(found.len(), reps, "{name}: one per repetition\n{}", self.text());
            for f in &found {
                assert_eq!((f.path.as_str(), f.unit.as_str(), f.clock.as_str()), (path, unit, "virtual"), "{f:?}");
            }
            (name, found.iter().map(|f| f.value).collect::<Vec<f64>>())
        };
        let all = vec![
            of("net.time_service", "%"),
            of("net.time_poll", "%"),
            of("net.time_app", "%"),
            of("net.time_idle", "%"),
            of("net.busy_per_frame", "ns/frame"),
            of("net.service_calls_per_frame", "calls/frame"),
        ];
        for rep in 0..reps {
            let shares: f64 = all[..4].iter().map(|(_, v)| v[rep]).sum();
            assert!((shares - 100.0).abs() <= 0.1, "repetition {rep}: shares add up to {shares}: {all:?}");
            assert!(all[..4].iter().all(|(_, v)| (0.0..=100.0).contains(&v[rep])), "{all:?}");
            assert!(all[4].1[rep] > 0.0, "repetition {rep}: busy time per frame {}", all[4].1[rep]);
        }
        all
    }

    pub fn starting(&self, prefix: &str) -> Vec<&str> {
        self.lines.iter().filter(|l| l.starts_with(prefix)).map(String::as_str).collect()
    }

    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// Frames on their way, and when each may be taken.
type Queue = Rc<RefCell<VecDeque<(u64, Vec<u8>)>>>;

/// One in-memory wire, both ways: each way sends a byte in `ns_per_byte`
/// (one frame after the other) and delivers it `latency_ns` later.
#[derive(Clone)]
pub struct Wire {
    forth: Queue,
    back: Queue,
    ns_per_byte: u64,
    latency_ns: u64,
}

/// 1 Gbit/s.
pub const GIGABIT_NS_PER_BYTE: u64 = 8;

impl Wire {
    pub fn new(ns_per_byte: u64, latency_ns: u64) -> Wire {
        Wire { forth: Queue::default(), back: Queue::default(), ns_per_byte, latency_ns }
    }

    /// The two ends.
    pub fn ends(&self) -> (Port, Port) {
        let port = |tx: &Queue, rx: &Queue| Port {
            tx: tx.clone(),
            rx: rx.clone(),
            ns_per_byte: self.ns_per_byte,
            latency_ns: self.latency_ns,
            busy_until: Cell::new(0),
        };
        (port(&self.forth, &self.back), port(&self.back, &self.forth))
    }
}

pub struct Port {
    tx: Queue,
    rx: Queue,
    ns_per_byte: u64,
    latency_ns: u64,
    /// When the frames sent so far are all on the wire.
    busy_until: Cell<u64>,
}

impl Port {
    fn send(&self, frame: Vec<u8>, now: u64) {
        let sent = self.busy_until.get().max(now) + frame.len() as u64 * self.ns_per_byte;
        self.busy_until.set(sent);
        self.tx.borrow_mut().push_back((sent + self.latency_ns, frame));
    }

    fn recv(&self, now: u64) -> Option<Vec<u8>> {
        let mut q = self.rx.borrow_mut();
        if q.front().is_some_and(|(at, _)| *at <= now) {
            return q.pop_front().map(|(_, f)| f);
        }
        None
    }

    /// When the next frame this way may be taken.
    fn next_at(&self) -> Option<u64> {
        self.rx.borrow().front().map(|(at, _)| *at)
    }
}

/// When a fake device with a channel advertised itself.
pub const ADVERTISED_AT: u64 = 5 * 1_000_000;

/// The shared-memory channel of the fake, as both ends see it: up from
/// `up_at` on, unless held on the fallback.
pub struct ChannelState {
    pub up_at: Option<u64>,
    pub held: bool,
    /// How long after a hold is released the channel is up again.
    pub back_after_ns: u64,
    /// Holds asked for (true) and released (false), in order.
    pub holds: Vec<bool>,
    /// When dom0 listed the peer, for detection's steps (the device
    /// advertised at [`ADVERTISED_AT`]).
    pub listed_at: Option<u64>,
}

impl ChannelState {
    fn up(&self, now: u64) -> bool {
        !self.held && self.up_at.is_some_and(|t| now >= t)
    }
}

/// A device over a fallback wire and, optionally, a channel wire: frames
/// to the peer take the channel while it is up, broadcasts and
/// everything else the fallback (as Cohort's switch routes them).
pub struct FakeDevice {
    mac: [u8; 6],
    clock: SimClock,
    fallback: Port,
    channel: Option<(Port, Rc<RefCell<ChannelState>>)>,
    frames: PathFrames,
    tcp_sent: Option<TcpSentTracker>,
    tcp_received: Option<TcpSentTracker>,
    pub shut_down: bool,
}

impl FakeDevice {
    pub fn new(mac: [u8; 6], clock: &SimClock, fallback: Port) -> FakeDevice {
        FakeDevice {
            mac,
            clock: clock.clone(),
            fallback,
            channel: None,
            frames: PathFrames::default(),
            tcp_sent: None,
            tcp_received: None,
            shut_down: false,
        }
    }

    pub fn with_channel(mut self, channel: Port, state: &Rc<RefCell<ChannelState>>) -> FakeDevice {
        self.channel = Some((channel, state.clone()));
        self
    }

    fn channel_up(&self) -> bool {
        self.channel.as_ref().is_some_and(|(_, s)| s.borrow().up(self.clock.now()))
    }

    /// When something happens next: a frame for us may be taken, on
    /// either path, or the channel comes up.
    fn next_at(&self) -> Option<u64> {
        let now = self.clock.now();
        let channel = self.channel.as_ref().and_then(|(p, _)| p.next_at());
        let up = self.channel.as_ref().and_then(|(_, s)| {
            let s = s.borrow();
            s.up_at.filter(|t| *t > now && !s.held)
        });
        [self.fallback.next_at(), channel, up].into_iter().flatten().min()
    }
}

pub struct FakeRx(Vec<u8>);

impl RxToken for FakeRx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

pub struct FakeTx<'a>(&'a mut FakeDevice);

impl TxToken for FakeTx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let out = f(&mut frame);
        let dev = self.0;
        if let Some(t) = &mut dev.tcp_sent {
            t.note(&frame);
        }
        let now = dev.clock.now();
        let unicast = frame[0] & 1 == 0;
        match &dev.channel {
            Some((port, _)) if unicast && dev.channel_up() => {
                port.send(frame, now);
                dev.frames.tx_channel += 1;
            }
            _ => {
                dev.fallback.send(frame, now);
                dev.frames.tx_fallback += 1;
            }
        }
        out
    }
}

impl Device for FakeDevice {
    type RxToken<'a> = FakeRx;
    type TxToken<'a> = FakeTx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(FakeRx, FakeTx<'_>)> {
        let now = self.clock.now();
        let frame = match self.channel.as_ref().and_then(|(p, _)| p.recv(now)) {
            Some(frame) => {
                self.frames.rx_channel += 1;
                frame
            }
            None => {
                let frame = self.fallback.recv(now)?;
                self.frames.rx_fallback += 1;
                frame
            }
        };
        if let Some(t) = &mut self.tcp_received {
            t.note(&frame);
        }
        Some((FakeRx(frame), FakeTx(self)))
    }

    fn transmit(&mut self, _: Instant) -> Option<FakeTx<'_>> {
        Some(FakeTx(self))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps
    }
}

impl Paths for FakeDevice {
    fn channels_up(&self) -> usize {
        usize::from(self.channel_up())
    }

    fn settling(&self) -> bool {
        self.channel.as_ref().is_some_and(|(_, s)| !s.borrow().held) && !self.channel_up()
    }

    fn hold(&mut self, held: bool) {
        let now = self.clock.now();
        if let Some((_, state)) = &self.channel {
            let mut s = state.borrow_mut();
            s.holds.push(held);
            s.held = held;
            if !held {
                s.up_at = Some(now + s.back_after_ns);
            }
        }
    }

    fn frames(&self) -> PathFrames {
        self.frames
    }

    fn track_tcp(&mut self, on: bool) {
        self.tcp_sent = on.then(TcpSentTracker::default);
        self.tcp_received = on.then(TcpSentTracker::default);
    }

    fn tcp_sent(&self) -> Option<TcpSent> {
        self.tcp_sent.as_ref().map(TcpSentTracker::sent)
    }

    fn tcp_received(&self) -> Option<TcpSent> {
        self.tcp_received.as_ref().map(TcpSentTracker::sent)
    }

    fn detection(&self) -> Option<Detection> {
        let (_, state) = self.channel.as_ref()?;
        Some(Detection { advertised_ns: ADVERTISED_AT, listed_ns: state.borrow().listed_at })
    }
}

impl NetDevice for FakeDevice {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn kind(&self) -> &'static str {
        "fake"
    }

    fn paths(&mut self) -> Option<&mut dyn Paths> {
        if self.channel.is_some() {
            Some(self)
        } else {
            None
        }
    }

    /// Every frame, with channels or without (as virtio counts its own).
    fn frames_moved(&mut self) -> Option<u64> {
        Some(self.frames.total())
    }

    fn counters(&self) -> String {
        let f = self.frames;
        format!(
            "fake: tx channel {} fallback {}, rx channel {} fallback {}",
            f.tx_channel, f.tx_fallback, f.rx_channel, f.rx_fallback
        )
    }

    fn figures(&self) -> Vec<(&'static str, f64, &'static str)> {
        vec![("fake.tx_frames", (self.frames.tx_channel + self.frames.tx_fallback) as f64, "frames")]
    }

    fn shutdown(&mut self) -> Result<String, String> {
        self.shut_down = true;
        Ok("fake: closed".into())
    }
}

/// One end: an interface, its sockets, its device.
pub struct End {
    pub iface: Interface,
    pub sockets: SocketSet<'static>,
    pub device: FakeDevice,
}

impl End {
    fn new(mut device: FakeDevice, ip: [u8; 4], clock: &SimClock) -> End {
        let mut iface = Interface::new(Config::new(EthernetAddress(device.mac).into()), &mut device, clock.instant());
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(IpAddress::v4(ip[0], ip[1], ip[2], ip[3]), 24)).unwrap();
        });
        End { iface, sockets: SocketSet::new(vec![]), device }
    }

    /// Polls until nothing changes (bounded); whether anything did.
    fn poll(&mut self, clock: &SimClock) -> bool {
        let mut changed = false;
        for _ in 0..64 {
            if self.iface.poll(clock.instant(), &mut self.device, &mut self.sockets) == smoltcp::iface::PollResult::None {
                break;
            }
            changed = true;
        }
        changed
    }
}

impl End {
    /// The device's frames: (tx channel, tx fallback, rx channel, rx fallback).
    pub fn device_frames(&self) -> (u64, u64, u64, u64) {
        let f = self.device.frames;
        (f.tx_channel, f.tx_fallback, f.rx_channel, f.rx_fallback)
    }
}

/// What runs at the remote end each round: (interface, sockets, now) →
/// whether it moved anything.
pub type RemoteApp = Box<dyn FnMut(&mut Interface, &mut SocketSet<'static>, u64) -> bool>;

/// Two interfaces joined by wires, on one simulated clock. The local end
/// is the stack the application under test runs on.
pub struct World {
    pub clock: SimClock,
    pub local: End,
    pub remote: End,
    remote_apps: Vec<RemoteApp>,
    profile: Profile,
    pub rounds: u64,
}

impl World {
    /// Joined by one gigabit wire: a device without channels (like
    /// virtio).
    pub fn plain() -> World {
        let clock = SimClock::default();
        let (a, b) = Wire::new(GIGABIT_NS_PER_BYTE, 0).ends();
        World::new(&clock, FakeDevice::new(LOCAL_MAC, &clock, a), FakeDevice::new(REMOTE_MAC, &clock, b))
    }

    /// Joined by two wires: the fallback (`fallback`) and the channel
    /// (`channel`), which `state` says is up or not.
    pub fn with_channel(fallback: Wire, channel: Wire, state: &Rc<RefCell<ChannelState>>) -> World {
        let clock = SimClock::default();
        let (fa, fb) = fallback.ends();
        let (ca, cb) = channel.ends();
        let local = FakeDevice::new(LOCAL_MAC, &clock, fa).with_channel(ca, state);
        let remote = FakeDevice::new(REMOTE_MAC, &clock, fb).with_channel(cb, state);
        World::new(&clock, local, remote)
    }

    fn new(clock: &SimClock, local: FakeDevice, remote: FakeDevice) -> World {
        World {
            clock: clock.clone(),
            local: End::new(local, LOCAL, clock),
            remote: End::new(remote, REMOTE, clock),
            remote_apps: Vec::new(),
            profile: Profile::default(),
            rounds: 0,
        }
    }

    /// Runs `app` at the remote end every round.
    pub fn remote_app(&mut self, app: impl FnMut(&mut Interface, &mut SocketSet<'static>, u64) -> bool + 'static) {
        self.remote_apps.push(Box::new(app));
    }

    /// The remote end's interface and sockets, to set up its apps.
    pub fn remote_parts(&mut self) -> (&mut Interface, &mut SocketSet<'static>) {
        (&mut self.remote.iface, &mut self.remote.sockets)
    }

    fn run_remote(&mut self) -> bool {
        let now = self.clock.now();
        let mut moved = false;
        for app in &mut self.remote_apps {
            moved |= app(&mut self.remote.iface, &mut self.remote.sockets, now);
        }
        moved
    }
}

impl apps::Stack for World {
    type Device = FakeDevice;

    fn device(&mut self) -> &mut FakeDevice {
        &mut self.local.device
    }

    fn device_ref(&self) -> &FakeDevice {
        &self.local.device
    }

    fn parts(&mut self) -> (&mut Interface, &mut SocketSet<'static>) {
        (&mut self.local.iface, &mut self.local.sockets)
    }

    fn ipv4(&self) -> Option<Ipv4Cidr> {
        self.local.iface.ipv4_addr().map(|a| Ipv4Cidr::new(a, 24))
    }

    /// A round of both ends: the local interface, the remote one and its
    /// apps; simulated time moves on by [`STEP_NS`].
    fn step(&mut self) -> bool {
        self.rounds += 1;
        assert!(self.rounds < 5_000_000, "the world ran away at {} ns", self.clock.now());
        self.clock.advance(STEP_NS);
        self.profile.add(Part::Poll, STEP_NS);
        let changed = self.local.poll(&self.clock);
        self.remote.poll(&self.clock);
        if self.run_remote() {
            self.remote.poll(&self.clock);
        }
        changed
    }

    /// Nothing to do now: time jumps to the next frame's arrival or either
    /// interface's next timer (at most [`MAX_IDLE_NS`]).
    fn wait(&mut self) {
        let now = self.clock.now();
        let timer = |end: &mut End, clock: &SimClock| {
            end.iface.poll_delay(clock.instant(), &end.sockets).map(|d| d.total_micros() * 1000)
        };
        let next = [
            self.local.device.next_at().map(|t| t.saturating_sub(now)),
            self.remote.device.next_at().map(|t| t.saturating_sub(now)),
            timer(&mut self.local, &self.clock),
            timer(&mut self.remote, &self.clock),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(MAX_IDLE_NS)
        .min(MAX_IDLE_NS);
        self.clock.advance(next);
        self.profile.add(Part::Idle, next);
    }

    fn profile(&mut self) -> &mut Profile {
        &mut self.profile
    }
}

/// The world with the TCP/UDP echo on port 7 at the remote end.
pub fn world_with_echo() -> (World, Rc<RefCell<Echo>>) {
    let mut world = World::plain();
    let echo = Rc::new(RefCell::new(Echo::new(world.remote_parts().1, 7).unwrap()));
    let e = echo.clone();
    world.remote_app(move |_, sockets, _| e.borrow_mut().service(sockets));
    (world, echo)
}

/// The world with the stream sink on port 9 at the remote end.
pub fn world_with_sink() -> (World, Rc<RefCell<Sink>>) {
    let mut world = World::plain();
    let sink = Rc::new(RefCell::new(Sink::new(world.remote_parts().1, 9)));
    let s = sink.clone();
    world.remote_app(move |_, sockets, _| s.borrow_mut().service(sockets));
    (world, sink)
}

/// The command line's network options for the local end: a static
/// address, the remote end as the peer.
pub fn net() -> NetOptions {
    NetOptions { ip: Some(CmdCidr { addr: LOCAL, prefix: 24 }), peer: Some(REMOTE), ..NetOptions::default() }
}

pub fn settings(net: NetOptions) -> Settings {
    Settings { net, clock: BenchClock::Virtual }
}

/// Runs `app` on the world's local end until it ends.
pub fn run(app: cohort_boot::cmdline::App, world: &mut World, net: NetOptions) -> (Result<(), String>, Captured) {
    run_until(app, world, net, &mut || false)
}

/// Runs `app` on the world's local end until it ends, or until `stop`
/// says the platform asks the guest to shut down.
pub fn run_until(
    app: cohort_boot::cmdline::App,
    world: &mut World,
    net: NetOptions,
    stop: &mut dyn FnMut() -> bool,
) -> (Result<(), String>, Captured) {
    let mut out = Captured::default();
    let clock = world.clock.clone();
    let result = apps::run(app, world, &settings(net), &clock, &mut out, stop);
    (result, out)
}

/// The `EVENT`s of one kind.
pub fn results_of<'a>(out: &'a [Event<String>], kind: &str) -> Vec<&'a Event<String>> {
    out.iter()
        .filter(|e| {
            let json = serde_json::to_value(e).unwrap();
            json["kind"] == kind
        })
        .collect()
}

/// The bytes a client sends: the apps' pattern, `n` of them.
pub fn pattern_bytes(n: usize) -> Vec<u8> {
    let mut p = apps::pattern::Pattern::new();
    let mut out = Vec::with_capacity(n);
    let mut chunk = Vec::new();
    // The clients draw the pattern in chunks of 16 KiB.
    while out.len() < n {
        p.fill(&mut chunk, (n - out.len()).min(16 * 1024));
        out.extend_from_slice(&chunk);
    }
    out
}
