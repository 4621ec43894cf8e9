//! The transports the benchmark sets side by side, each as a sending and a
//! receiving half for two threads. Every one moves a frame with one copy
//! in (from the sender's buffer into shared memory) and one copy out (into
//! the receiver's buffer), through a shared buffer of the same size.

use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::Arc;

use channel::{Channel, Config, SendError};

use crate::host::{AtomicMem, Backing, Events, Grants, RawMem};

/// Which transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The channel crate's ring over plain shared bytes, as in the kernel.
    Channel,
    /// The same, over atomic words (no `unsafe`).
    ChannelAtomic,
    /// The copying-alone bound, see [`memcpy_pair`].
    Memcpy,
    /// `rtrb`'s byte ring.
    Rtrb,
    /// A diagnosis, not a baseline: the memcpy stream with the channel's
    /// index traffic (see [`memcpy_pair`]'s `eager`).
    MemcpyEager,
}

impl Kind {
    /// The transports the benchmark compares.
    pub const ALL: [Kind; 4] = [Kind::Channel, Kind::ChannelAtomic, Kind::Memcpy, Kind::Rtrb];
    /// Those and the diagnoses.
    pub const EVERY: [Kind; 5] = [Kind::Channel, Kind::ChannelAtomic, Kind::Memcpy, Kind::Rtrb, Kind::MemcpyEager];

    /// The middle part of the figures' names (`ring.<name>.throughput.N`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Channel => RawMem::NAME,
            Kind::ChannelAtomic => AtomicMem::NAME,
            Kind::Memcpy => "memcpy",
            Kind::Rtrb => "rtrb",
            Kind::MemcpyEager => "memcpy_eager",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::EVERY.into_iter().find(|k| k.name() == s)
    }
}

/// The sending half: `Ok(false)` when there is no room now.
pub trait Tx: Send {
    fn try_send(&mut self, frame: &[u8]) -> Result<bool, String>;
    /// Times a send found no room (as the transport counts them).
    fn full(&self) -> u64;
}

/// The receiving half: `Ok(false)` when nothing is there now; a received
/// frame replaces `out`'s contents.
pub trait Rx: Send {
    fn try_recv(&mut self, out: &mut Vec<u8>) -> Result<bool, String>;
}

/// A transport's sending and receiving halves.
pub type Halves = (Box<dyn Tx>, Box<dyn Rx>);

/// Both halves of `kind`, over `ring_bytes` of shared buffer, for frames
/// of `frame_len` bytes (the memcpy stream's slots are cut for that length;
/// the others take any length up to it).
pub fn pair(kind: Kind, ring_bytes: usize, frame_len: usize) -> Result<Halves, String> {
    Ok(match kind {
        Kind::Channel => {
            let (a, b) = channel_pair::<RawMem>(ring_bytes, frame_len)?;
            (Box::new(a), Box::new(b))
        }
        Kind::ChannelAtomic => {
            let (a, b) = channel_pair::<AtomicMem>(ring_bytes, frame_len)?;
            (Box::new(a), Box::new(b))
        }
        Kind::Memcpy | Kind::MemcpyEager => {
            let (a, b) = memcpy_pair(ring_bytes, frame_len, kind == Kind::MemcpyEager)?;
            (Box::new(a), Box::new(b))
        }
        Kind::Rtrb => {
            let (p, c) = rtrb::RingBuffer::new(ring_bytes);
            (Box::new(RtrbTx { p, full: 0 }), Box::new(RtrbRx { c }))
        }
    })
}

/// One end of a real channel between "domains" 1 and 2.
pub struct ChannelEnd<B: Backing> {
    ch: Channel<Grants<B>, Events>,
}

impl<B: Backing> ChannelEnd<B> {
    pub fn counters(&self) -> channel::ChannelCounters {
        self.ch.counters()
    }
}

/// Two channels set up as two guests would (offer, attach each other's
/// offer, both up), in polling mode: no events while frames flow. Domain 1
/// sends on its ring, domain 2 reads it through its mapping.
pub fn channel_pair<B: Backing>(ring_bytes: usize, frame_len: usize) -> Result<(ChannelEnd<B>, ChannelEnd<B>), String> {
    let pages = ring_bytes / xen_proto::iface::PAGE_SIZE;
    let config =
        Config { ring_pages: pages as u32, polling: true, spin_ns: 0, max_frame: frame_len.max(channel::ring::ETH_FRAME) };
    if !config.valid() {
        return Err(format!("no channel of {pages} pages for {frame_len}-byte frames (Config::valid)"));
    }
    let (ga, gb) = Grants::<B>::pair(1, 2);
    let (mut a, offer_a) = Channel::offer(ga, Events::default(), 1, 2, config, 0xa).map_err(|e| e.to_string())?;
    let (mut b, offer_b) = Channel::offer(gb, Events::default(), 2, 1, config, 0xb).map_err(|e| e.to_string())?;
    a.attach(&offer_b).map_err(|e| e.to_string())?;
    b.attach(&offer_a).map_err(|e| e.to_string())?;
    a.poll_peer();
    b.poll_peer();
    if !(a.is_up() && b.is_up()) {
        return Err("the channel did not come up".into());
    }
    Ok((ChannelEnd { ch: a }, ChannelEnd { ch: b }))
}

impl<B: Backing> Tx for ChannelEnd<B> {
    fn try_send(&mut self, frame: &[u8]) -> Result<bool, String> {
        match self.ch.send(frame) {
            Ok(()) => Ok(true),
            Err(SendError::Full) => Ok(false),
            Err(e) => Err(format!("channel send: {e:?}")),
        }
    }
    fn full(&self) -> u64 {
        self.ch.counters().ring_full
    }
}

impl<B: Backing> Rx for ChannelEnd<B> {
    fn try_recv(&mut self, out: &mut Vec<u8>) -> Result<bool, String> {
        self.ch.recv_into(out).map_err(|v| format!("channel receive: {v:?}"))
    }
}

/// A cache line of its own for an index (and, for the eager variant, a
/// word beside it that the other side reads, as the channel's event
/// indices sit beside its ring indices).
#[repr(align(64))]
struct Line(AtomicU64, AtomicU64);

struct Slots {
    mem: RawMem,
    /// Slots the producer filled, and the consumer emptied (free-running).
    head: Line,
    tail: Line,
    slots: u64,
    stride: usize,
    len: usize,
    eager: bool,
}

pub struct MemcpyTx {
    s: Arc<Slots>,
    head: u64,
    tail_seen: u64,
    full: u64,
    scratch: Vec<u8>,
}

pub struct MemcpyRx {
    s: Arc<Slots>,
    tail: u64,
    head_seen: u64,
}

/// The copying-alone bound: what any transport that copies a frame into
/// shared memory on one core and out of it on the other must at least do.
/// The buffer (the same size as the others') is cut into fixed slots of
/// the frame's length rounded up to a cache line; the sender copies the
/// frame into the next free slot, the receiver copies it out. The hand-off
/// is the least there is: one atomic index per side, in cache lines of
/// their own, and each side reads the other's index only when its cached
/// copy says the ring is full (or empty). No headers, no lengths, no
/// checks, no padding records: two `memcpy`s per frame and the cache lines
/// crossing between the cores. (A single memcpy from one core's buffer
/// into another's has no hand-off at all and says nothing about a stream;
/// two copies through a shared buffer are what the channel, rtrb and this
/// all do.)
///
/// `eager` makes it a diagnosis of the channel's cost rather than a bound:
/// each side then reads the other's index on every call (no cached copy)
/// and, after publishing its own, makes a `SeqCst` fence and reads the
/// word beside the other's index, which is what the channel's send and
/// receive do per frame in polling mode (the peer's consumer or producer
/// index, then the peer's event index after a `SeqCst` fence). The copies
/// and the slots stay as they are.
pub fn memcpy_pair(ring_bytes: usize, frame_len: usize, eager: bool) -> Result<(MemcpyTx, MemcpyRx), String> {
    let stride = frame_len.div_ceil(64) * 64;
    let slots = ring_bytes / stride.max(1);
    if slots < 2 || frame_len == 0 {
        return Err(format!("a {ring_bytes}-byte buffer holds fewer than two {frame_len}-byte slots"));
    }
    let s = Arc::new(Slots {
        mem: RawMem::new(ring_bytes),
        head: Line(AtomicU64::new(0), AtomicU64::new(0)),
        tail: Line(AtomicU64::new(0), AtomicU64::new(0)),
        slots: slots as u64,
        stride,
        len: frame_len,
        eager,
    });
    Ok((MemcpyTx { s: s.clone(), head: 0, tail_seen: 0, full: 0, scratch: Vec::new() }, MemcpyRx { s, tail: 0, head_seen: 0 }))
}

impl Tx for MemcpyTx {
    fn try_send(&mut self, frame: &[u8]) -> Result<bool, String> {
        let s = &*self.s;
        if frame.len() != s.len {
            return Err(format!("memcpy stream of {}-byte slots given {} bytes", s.len, frame.len()));
        }
        if s.eager || self.head - self.tail_seen == s.slots {
            self.tail_seen = s.tail.0.load(Ordering::Acquire);
            if self.head - self.tail_seen == s.slots {
                self.full += 1;
                return Ok(false);
            }
        }
        let at = (self.head % s.slots) as usize * s.stride;
        s.mem.fill(at, frame.len(), &mut self.scratch, |slot| slot.copy_from_slice(frame));
        self.head += 1;
        s.head.0.store(self.head, Ordering::Release);
        if s.eager {
            fence(Ordering::SeqCst);
            std::hint::black_box(s.tail.1.load(Ordering::Relaxed));
        }
        Ok(true)
    }
    fn full(&self) -> u64 {
        self.full
    }
}

impl Rx for MemcpyRx {
    fn try_recv(&mut self, out: &mut Vec<u8>) -> Result<bool, String> {
        let s = &*self.s;
        if s.eager || self.tail == self.head_seen {
            self.head_seen = s.head.0.load(Ordering::Acquire);
            if self.tail == self.head_seen {
                return Ok(false);
            }
        }
        let at = (self.tail % s.slots) as usize * s.stride;
        out.resize(s.len, 0);
        s.mem.read(at, out);
        self.tail += 1;
        s.tail.0.store(self.tail, Ordering::Release);
        if s.eager {
            fence(Ordering::SeqCst);
            std::hint::black_box(s.head.1.load(Ordering::Relaxed));
        }
        Ok(true)
    }
}

/// rtrb's `RingBuffer<u8>` as a byte stream of records: a 4-byte length,
/// then the frame, each pushed with `push_entire_slice` (one copy in) once
/// both fit; read back with `read_chunk` (the length peeked, then length
/// and frame copied out of the chunk's slices and committed).
pub struct RtrbTx {
    p: rtrb::Producer<u8>,
    full: u64,
}

pub struct RtrbRx {
    c: rtrb::Consumer<u8>,
}

impl Tx for RtrbTx {
    fn try_send(&mut self, frame: &[u8]) -> Result<bool, String> {
        let need = 4 + frame.len();
        if need > self.p.buffer().capacity() {
            return Err(format!("a {}-byte frame does not fit rtrb's ring", frame.len()));
        }
        if self.p.slots() < need {
            self.full += 1;
            return Ok(false);
        }
        let pushed = self.p.push_entire_slice(&(frame.len() as u32).to_le_bytes()).and_then(|()| self.p.push_entire_slice(frame));
        pushed.map_err(|e| format!("rtrb push after slots() said it fits: {e}"))?;
        Ok(true)
    }
    fn full(&self) -> u64 {
        self.full
    }
}

impl Rx for RtrbRx {
    fn try_recv(&mut self, out: &mut Vec<u8>) -> Result<bool, String> {
        let len = match self.c.read_chunk(4) {
            Ok(chunk) => {
                let (a, b) = chunk.as_slices();
                let mut h = [0u8; 4];
                h[..a.len()].copy_from_slice(a);
                h[a.len()..].copy_from_slice(b);
                u32::from_le_bytes(h) as usize
            }
            Err(_) => return Ok(false),
        };
        let Ok(chunk) = self.c.read_chunk(4 + len) else { return Ok(false) };
        let (a, b) = chunk.as_slices();
        out.resize(len, 0);
        // The frame starts 4 bytes into the chunk: skip them in `a`, or
        // what of them `a` lacks in `b`.
        let skip_a = a.len().min(4);
        let skip_b = 4 - skip_a;
        let a = &a[skip_a..];
        out[..a.len()].copy_from_slice(a);
        out[a.len()..].copy_from_slice(&b[skip_b..]);
        chunk.commit_all();
        Ok(true)
    }
}
