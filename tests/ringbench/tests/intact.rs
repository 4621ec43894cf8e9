//! The benchmark's transfers move every frame intact, through every
//! transport, and a transfer that loses, repeats or alters a frame ends in
//! an error, never in a figure.

use cohort_ringbench::run::{one_thread, transfer, Check, Placement};
use cohort_ringbench::transport::{pair, Kind, Rx};
use cohort_ringbench::{Figure, RING_BYTES};

const UNPINNED: Placement = Placement { tx_core: None, rx_core: None };

/// Enough frames to go round the 64 KiB ring many times (pads included,
/// for the channel): 256 KiB, at least 600 frames.
fn frames(len: usize) -> u64 {
    ((256 << 10) / len as u64).max(600)
}

#[test]
fn every_transport_moves_every_frame_intact() {
    // The bench's sizes, and odd ones: lengths that are no multiple of 8
    // (partial words for channel_atomic, padded records for the channel)
    // and the largest the channel's 16-page ring takes.
    for len in [16, 64, 1001, 1500, 1514, 9000, 32_000] {
        for kind in Kind::EVERY {
            let (tx, rx) = pair(kind, RING_BYTES, len).unwrap();
            let n = frames(len);
            let out = transfer(tx, rx, len, n, UNPINNED, Check::Full).unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
            assert_eq!(out.frames, n);
            assert_eq!(out.bytes, n * len as u64);
            assert!(out.gbit_per_s() > 0.0);
        }
    }
}

#[test]
fn on_one_thread_too() {
    for len in [64, 1001, 9000] {
        for kind in Kind::EVERY {
            let (mut tx, mut rx) = pair(kind, RING_BYTES, len).unwrap();
            let o = one_thread(&mut *tx, &mut *rx, len, 2000).unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
            assert_eq!(o.frames, 2000);
            // The ring filled up (2000 frames never fit at once) and
            // drained again.
            assert!(o.full >= 1 && o.empty >= 2, "{}: {o:?}", kind.name());
        }
    }
}

#[test]
fn the_channel_goes_past_the_wrap_of_its_u32_indices() {
    // Over 4 GiB through the 64 KiB ring: both ends' indices wrap, with
    // the sender's cached consumer index and the receiver's cached
    // producer index read again at every full and empty ring around it
    // (and a pad record every other frame).
    let len = 32_000;
    let frames = (1u64 << 32) / len as u64 + 1000;
    let (mut tx, mut rx) = pair(Kind::Channel, RING_BYTES, len).unwrap();
    let o = one_thread(&mut *tx, &mut *rx, len, frames).unwrap();
    assert_eq!(o.frames, frames);
    assert!(o.bytes > 1 << 32);
}

#[test]
fn pinned_to_one_core_and_to_two() {
    let (a, b) = cohort_ringbench::cores();
    let mut places = vec![Placement { tx_core: a, rx_core: a }];
    if b.is_some() {
        places.push(Placement { tx_core: a, rx_core: b });
    }
    for at in places {
        for kind in Kind::ALL {
            let (tx, rx) = pair(kind, RING_BYTES, 1514).unwrap();
            transfer(tx, rx, 1514, 2000, at, Check::Full).unwrap_or_else(|e| panic!("{} at {at:?}: {e}", kind.name()));
        }
    }
}

#[test]
fn the_channel_really_carries_the_frames() {
    // The channel's own counters agree with the transfer: every frame went
    // through its ring, none was refused, no event was needed (polling).
    let (tx, rx) = cohort_ringbench::transport::channel_pair::<cohort_ringbench::host::RawMem>(RING_BYTES, 9000).unwrap();
    // Attaching notified the peer once each way; nothing more may follow.
    let set_up = tx.counters().notifications_sent + rx.counters().notifications_sent;
    let (tx, rx) = (Box::new(tx), Box::new(rx));
    let n = 500;
    // Keep a view of the counters: run the transfer on the boxed ends and
    // read them back through a shared cell.
    struct Counted<T>(Box<T>, std::sync::Arc<std::sync::Mutex<Option<channel::ChannelCounters>>>);
    type End = cohort_ringbench::transport::ChannelEnd<cohort_ringbench::host::RawMem>;
    impl cohort_ringbench::transport::Tx for Counted<End> {
        fn try_send(&mut self, frame: &[u8]) -> Result<bool, String> {
            let r = cohort_ringbench::transport::Tx::try_send(&mut *self.0, frame);
            *self.1.lock().unwrap() = Some(self.0.counters());
            r
        }
        fn full(&self) -> u64 {
            cohort_ringbench::transport::Tx::full(&*self.0)
        }
    }
    impl Rx for Counted<End> {
        fn try_recv(&mut self, out: &mut Vec<u8>) -> Result<bool, String> {
            let r = Rx::try_recv(&mut *self.0, out);
            *self.1.lock().unwrap() = Some(self.0.counters());
            r
        }
    }
    let sent = std::sync::Arc::new(std::sync::Mutex::new(None));
    let got = std::sync::Arc::new(std::sync::Mutex::new(None));
    transfer(Box::new(Counted(tx, sent.clone())), Box::new(Counted(rx, got.clone())), 9000, n, UNPINNED, Check::Full).unwrap();
    let sent = sent.lock().unwrap().unwrap();
    let got = got.lock().unwrap().unwrap();
    assert_eq!((sent.tx_frames, sent.tx_bytes), (n, n * 9000));
    assert_eq!((got.rx_frames, got.rx_bytes), (n, n * 9000));
    assert_eq!(sent.notifications_sent + got.notifications_sent, set_up);
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    Drop,
    Repeat,
    Flip,
    Cut,
}

/// A receiving half that spoils the 100th frame.
struct Faulty {
    inner: Box<dyn Rx>,
    fault: Fault,
    seen: u64,
    held: Option<Vec<u8>>,
}

impl Rx for Faulty {
    fn try_recv(&mut self, out: &mut Vec<u8>) -> Result<bool, String> {
        if let Some(frame) = self.held.take() {
            *out = frame;
            return Ok(true);
        }
        if !self.inner.try_recv(out)? {
            return Ok(false);
        }
        self.seen += 1;
        if self.seen == 100 {
            match self.fault {
                Fault::Drop => return self.inner.try_recv(out).map(|_| false),
                Fault::Repeat => self.held = Some(out.clone()),
                Fault::Flip => {
                    let mid = out.len() / 2;
                    out[mid] ^= 1;
                }
                Fault::Cut => out.truncate(out.len() - 1),
            }
        }
        Ok(true)
    }
}

#[test]
fn a_spoiled_frame_is_an_error_not_a_figure() {
    for kind in Kind::ALL {
        for fault in [Fault::Drop, Fault::Repeat, Fault::Flip, Fault::Cut] {
            let (tx, rx) = pair(kind, RING_BYTES, 1500).unwrap();
            let rx = Box::new(Faulty { inner: rx, fault, seen: 0, held: None });
            let r = transfer(tx, rx, 1500, 1000, UNPINNED, Check::Full);
            assert!(r.is_err(), "{} with {fault:?}: {r:?}", kind.name());
        }
    }
    // The timed runs check the stamps only: a flipped byte in the middle
    // passes them, every other fault does not.
    for fault in [Fault::Drop, Fault::Repeat, Fault::Cut] {
        let (tx, rx) = pair(Kind::Channel, RING_BYTES, 1500).unwrap();
        let rx = Box::new(Faulty { inner: rx, fault, seen: 0, held: None });
        assert!(transfer(tx, rx, 1500, 1000, UNPINNED, Check::Stamps).is_err(), "{fault:?}");
    }
}

#[test]
fn figures_read_back_as_the_harness_reads_them() {
    let (tx, rx) = pair(Kind::Memcpy, RING_BYTES, 64).unwrap();
    let o = transfer(tx, rx, 64, 5000, UNPINNED, Check::Stamps).unwrap();
    let f =
        Figure { name: "ring.memcpy.throughput.64".into(), path: "host", value: o.gbit_per_s(), unit: "Gbit/s", clock: "wall" };
    let line = f.line();
    assert!(line.starts_with("BENCH {\"name\":\"ring.memcpy.throughput.64\",\"path\":\"host\",\"value\":"), "{line}");
    let json = figures::json_in(&line).unwrap();
    let back: figures::Figure<String> = serde_json::from_str(json).unwrap();
    assert_eq!(
        (back.name.as_str(), back.path.as_str(), back.unit.as_str(), back.clock.as_str()),
        ("ring.memcpy.throughput.64", "host", "Gbit/s", "wall")
    );
    assert!(back.value > 0.0);
}

#[test]
fn a_plan_gives_every_figure_once_a_repetition() {
    let plan = cohort_ringbench::Plan {
        sizes: vec![64, 1514],
        kinds: Kind::ALL.to_vec(),
        reps: 2,
        bytes: 64 << 10,
        ring_bytes: RING_BYTES,
        cross: Some(UNPINNED),
        same: None,
    };
    let mut figures = Vec::new();
    let all = cohort_ringbench::run_plan(&plan, &mut |f| figures.push(f.clone()), &mut |_| {}).unwrap();
    assert_eq!(all.len(), 2);
    for len in [64, 1514] {
        let mut names: Vec<String> = Vec::new();
        for kind in Kind::ALL {
            names.push(format!("ring.{}.throughput.{len}", kind.name()));
            names.push(format!("ring.{}.frames.{len}", kind.name()));
        }
        names.push(format!("ring.channel_vs_memcpy.{len}"));
        names.push(format!("ring.channel_vs_rtrb.{len}"));
        for name in names {
            let of: Vec<&Figure> = figures.iter().filter(|f| f.name == name).collect();
            assert_eq!(of.len(), 2, "{name}");
            assert!(of.iter().all(|f| f.value > 0.0 && f.path == "host" && f.clock == "wall"), "{name}: {of:?}");
        }
    }
    assert_eq!(figures.len(), 2 * 2 * (4 * 2 + 2));
    // The ratio is the channel's throughput over the other's, same repetition.
    let first = |name: &str| figures.iter().find(|f| f.name == name).unwrap().value;
    let (channel, memcpy) = (first("ring.channel.throughput.64"), first("ring.memcpy.throughput.64"));
    let ratio = channel / memcpy;
    // The figures are rounded to thousandths: on a loaded host a tiny
    // transfer's Gbit/s is small enough for that to matter.
    let rounding = ratio * (0.0005 / channel + 0.0005 / memcpy);
    let reported = first("ring.channel_vs_memcpy.64");
    assert!((reported - ratio).abs() < 0.01 * ratio.max(0.1) + rounding, "{reported} against {channel} / {memcpy}");
    assert!(cohort_ringbench::summary(&all).contains("channel / memcpy"));
}
