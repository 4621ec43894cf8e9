//! One timed transfer: a sending and a receiving thread, each pinned to a
//! core, moving `frames` frames of one length through a transport, with
//! every frame checked on the receiving side.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::transport::{Rx, Tx};

/// How much of each frame the receiver checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// The sequence number stamped at both ends of the frame (16 bytes):
    /// no frame lost, repeated, reordered or cut, at a cost that does not
    /// grow with the frame. What the timed runs use.
    Stamps,
    /// Every byte against what the sender sent (the frames' bodies differ
    /// from one frame to the next). What the tests use.
    Full,
}

/// Which cores the two threads run on (`None`: not pinned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub tx_core: Option<usize>,
    pub rx_core: Option<usize>,
}

/// A transfer's result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    pub elapsed: Duration,
    pub frames: u64,
    pub bytes: u64,
    /// Sends that found no room.
    pub full: u64,
    /// Receives that found nothing.
    pub empty: u64,
    /// Waits that gave up the core (`thread::yield_now`), both threads.
    pub yields: u64,
    /// Times another task ran on either thread's core during the transfer
    /// (involuntary context switches, from `/proc/thread-self/status`, 0
    /// where it cannot be read: a preemption, or a yield that let another
    /// task run): the transfer then measured the host's load too.
    pub preempted: u64,
}

impl Outcome {
    pub fn gbit_per_s(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.elapsed.as_secs_f64() / 1e9
    }
    pub fn frames_per_s(&self) -> f64 {
        self.frames as f64 / self.elapsed.as_secs_f64()
    }
}

/// How many different frame bodies the sender cycles through.
const BODIES: u64 = 7;

/// The frame bodies: bytes from a small xorshift generator, different per
/// body, so a frame delivered with another frame's body fails a full
/// check.
fn bodies(len: usize) -> Vec<Vec<u8>> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..BODIES)
        .map(|_| {
            (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        })
        .collect()
}

/// Writes `seq` into the first and last 8 bytes of `frame`.
fn stamp(frame: &mut [u8], seq: u64) {
    let n = frame.len();
    frame[..8].copy_from_slice(&seq.to_le_bytes());
    frame[n - 8..].copy_from_slice(&(!seq).to_le_bytes());
}

fn stamps(frame: &[u8]) -> (u64, u64) {
    let n = frame.len();
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or_default());
    (word(&frame[..8]), !word(&frame[n - 8..]))
}

/// Spins a while, then gives up the core on every further try (so two
/// threads sharing one core still take turns).
struct Backoff {
    tries: u32,
    yields: u64,
}

impl Backoff {
    const SPINS: u32 = 256;

    fn snooze(&mut self) {
        if self.tries < Self::SPINS {
            self.tries += 1;
            std::hint::spin_loop();
        } else {
            self.yields += 1;
            std::thread::yield_now();
        }
    }

    fn reset(&mut self) {
        self.tries = 0;
    }
}

/// This thread's involuntary context switches so far (0 if unknown).
fn preemptions() -> u64 {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("nonvoluntary_ctxt_switches:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

fn pin(core: Option<usize>) -> Result<(), String> {
    let Some(core) = core else { return Ok(()) };
    if core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        Ok(())
    } else {
        Err(format!("cannot pin a thread to core {core}"))
    }
}

/// Moves `frames` frames of `len` bytes (at least 16) from `tx`'s thread to
/// `rx`'s. The clock runs from the moment both threads are ready to the
/// receipt of the last frame. Fails, with no figure, on the first frame
/// that is missing, repeated, out of order or altered, or on a transport
/// error.
pub fn transfer(
    mut tx: Box<dyn Tx>,
    mut rx: Box<dyn Rx>,
    len: usize,
    frames: u64,
    at: Placement,
    check: Check,
) -> Result<Outcome, String> {
    if len < 16 {
        return Err(format!("frames of {len} bytes cannot carry the 16 bytes of stamps"));
    }
    let start = Arc::new(Barrier::new(2));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (start, stop) = (start.clone(), stop.clone());
        std::thread::spawn(move || -> Result<(u64, u64, u64), String> {
            let pinned = pin(at.tx_core);
            start.wait();
            pinned?;
            let preempted = preemptions();
            let bodies = bodies(len);
            let mut frame = bodies[0].clone();
            let mut wait = Backoff { tries: 0, yields: 0 };
            for seq in 0..frames {
                if check == Check::Full {
                    frame.copy_from_slice(&bodies[(seq % BODIES) as usize]);
                }
                stamp(&mut frame, seq);
                loop {
                    match tx.try_send(&frame) {
                        Ok(true) => break,
                        Ok(false) if stop.load(Ordering::Relaxed) => return Err("the receiver stopped".into()),
                        Ok(false) => wait.snooze(),
                        Err(e) => {
                            stop.store(true, Ordering::Relaxed);
                            return Err(e);
                        }
                    }
                }
                wait.reset();
            }
            Ok((tx.full(), wait.yields, preemptions() - preempted))
        })
    };
    let receiver = {
        let stop = stop.clone();
        std::thread::spawn(move || -> Result<(Duration, u64, u64, u64), String> {
            let pinned = pin(at.rx_core);
            start.wait();
            pinned?;
            let preempted = preemptions();
            let t0 = Instant::now();
            let bodies = if check == Check::Full { bodies(len) } else { Vec::new() };
            let mut expected = vec![0u8; len];
            let mut out = Vec::with_capacity(len);
            let mut wait = Backoff { tries: 0, yields: 0 };
            let mut empty = 0u64;
            let fail = |e: String| {
                stop.store(true, Ordering::Relaxed);
                Err(e)
            };
            for seq in 0..frames {
                loop {
                    match rx.try_recv(&mut out) {
                        Ok(true) => break,
                        Ok(false) if stop.load(Ordering::Relaxed) => return Err("the sender stopped".into()),
                        Ok(false) => {
                            empty += 1;
                            wait.snooze();
                        }
                        Err(e) => return fail(e),
                    }
                }
                wait.reset();
                if out.len() != len {
                    return fail(format!("frame {seq}: {} bytes, sent {len}", out.len()));
                }
                let (head, tail) = stamps(&out);
                if head != seq || tail != seq {
                    return fail(format!("frame {seq}: stamped {head} at the start and {tail} at the end"));
                }
                if check == Check::Full {
                    expected.copy_from_slice(&bodies[(seq % BODIES) as usize]);
                    stamp(&mut expected, seq);
                    if let Some(at) = out.iter().zip(&expected).position(|(a, b)| a != b) {
                        return fail(format!("frame {seq}: byte {at} is {:#04x}, sent {:#04x}", out[at], expected[at]));
                    }
                }
            }
            let elapsed = t0.elapsed();
            let preempted = preemptions() - preempted;
            // Nothing more may come: a transport that delivered a frame
            // twice would show it here.
            match rx.try_recv(&mut out) {
                Ok(false) => Ok((elapsed, empty, wait.yields, preempted)),
                Ok(true) => Err(format!("a frame after the last of {frames}")),
                Err(e) => Err(e),
            }
        })
    };
    let received = receiver.join().map_err(|_| "the receiving thread panicked".to_string())?;
    let sent = sender.join().map_err(|_| "the sending thread panicked".to_string())?;
    let (elapsed, empty, rx_yields, rx_preempted) = received?;
    let (full, tx_yields, tx_preempted) = sent?;
    Ok(Outcome {
        elapsed,
        frames,
        bytes: frames * len as u64,
        full,
        empty,
        yields: rx_yields + tx_yields,
        preempted: rx_preempted + tx_preempted,
    })
}

/// The same transfer on one thread, no second core and no waiting: send
/// until the transport is full, receive until it is empty, again. What a
/// frame costs in instructions and in the cache of one core, without the
/// cache lines crossing to another (the split `--diagnose` prints).
pub fn one_thread(tx: &mut dyn Tx, rx: &mut dyn Rx, len: usize, frames: u64) -> Result<Outcome, String> {
    if len < 16 {
        return Err(format!("frames of {len} bytes cannot carry the 16 bytes of stamps"));
    }
    let mut frame = bodies(len).swap_remove(0);
    let mut out = Vec::with_capacity(len);
    let (mut sent, mut got, mut full, mut empty) = (0u64, 0u64, 0u64, 0u64);
    let t0 = Instant::now();
    while got < frames {
        while sent < frames {
            stamp(&mut frame, sent);
            if !tx.try_send(&frame)? {
                full += 1;
                break;
            }
            sent += 1;
        }
        let before = got;
        while rx.try_recv(&mut out)? {
            if out.len() != len || stamps(&out) != (got, got) {
                return Err(format!("frame {got} altered"));
            }
            got += 1;
        }
        empty += 1;
        if got == before {
            return Err(format!("no progress after {got} frames"));
        }
    }
    Ok(Outcome { elapsed: t0.elapsed(), frames, bytes: frames * len as u64, full, empty, yields: 0, preempted: 0 })
}
