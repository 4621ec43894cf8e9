//! `app=udp-rr` against the UDP echo, over two smoltcp interfaces on a
//! simulated clock: every datagram is answered and timed; against a lossy
//! echo the lost requests are counted, late answers told apart, and the
//! test goes on; against none it ends after its setup tries.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use apps::udp_rr::{LOSS_TIMEOUT_NS, SETUP_TRIES_MAX};
use cohort_boot::cmdline::{App, NetOptions};
use figures::Event;
use smoltcp::socket::udp;
use support::{net, results_of, run, world_with_echo, Captured, World, MS};

/// (transactions, lost, stale, seconds, per second, p50, p99) of each `udp_rr` result.
fn the_rrs(out: &Captured) -> Vec<(u32, u32, u32, f64, f64, f64, f64)> {
    let results = out.results();
    results_of(&results, "udp_rr")
        .into_iter()
        .map(|e| {
            let Event::UdpRr { path, transactions, lost, stale, seconds, per_second, p50_us, p99_us, frames, .. } = e else {
                unreachable!()
            };
            assert_eq!((path.as_str(), *frames), ("fake", None));
            (*transactions, *lost, *stale, *seconds, *per_second, *p50_us, *p99_us)
        })
        .collect()
}

#[test]
fn every_datagram_is_answered_and_timed() {
    let (mut world, echo) = world_with_echo();
    let (result, out) = run(App::UdpRr, &mut world, NetOptions { count: 200, msg: 64, reps: 2, ..net() });
    result.unwrap();
    let rrs = the_rrs(&out);
    assert_eq!(rrs.len(), 2, "{}", out.text());
    for (transactions, lost, stale, seconds, per_second, p50, p99) in rrs {
        assert_eq!((transactions, lost, stale), (200, 0, 0));
        assert!(p50 > 0.0 && p99 >= p50 && p99 < 1000.0, "p50 {p50} p99 {p99}");
        assert!((per_second - 200.0 / seconds).abs() / per_second < 1e-3);
    }
    // Every request reached the echo (the first may wait for ARP, not be lost).
    assert_eq!(echo.borrow().udp_packets, 400);
    assert_eq!(out.figures().iter().filter(|f| f.name == "net.udp_rr_lost" && f.value == 0.0).count(), 2);
    assert_eq!(out.figures().iter().filter(|f| f.name == "net.udp_rr" && f.unit == "transactions/s").count(), 2);
    out.cost_figures("fake", 2);
    assert_eq!(out.results().last(), Some(&Event::App { app: "udp-rr".into(), ok: true, error: None }));
}

/// What the lossy echo did: requests seen, dropped, answered late.
#[derive(Default)]
struct Lossy {
    seen: u32,
    dropped: u32,
    late: u32,
}

#[test]
fn lost_requests_are_counted_and_late_answers_dropped() {
    let mut world = World::plain();
    let h = {
        let sockets = world.remote_parts().1;
        let buffer = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 16], vec![0; 16 * 1500]);
        let h = sockets.add(udp::Socket::new(buffer(), buffer()));
        sockets.get_mut::<udp::Socket>(h).bind(7).unwrap();
        h
    };
    let lossy = Rc::new(RefCell::new(Lossy::default()));
    let l = lossy.clone();
    // Every 10th request dropped; every 7th answered after the loss
    // timeout (held, then sent with the next answer).
    let mut held: Vec<(Vec<u8>, smoltcp::wire::IpEndpoint, u64)> = Vec::new();
    world.remote_app(move |_, sockets, now| {
        let s = sockets.get_mut::<udp::Socket>(h);
        let mut l = l.borrow_mut();
        let mut moved = false;
        while let Ok((data, meta)) = s.recv() {
            let (data, from) = (data.to_vec(), meta.endpoint);
            l.seen += 1;
            moved = true;
            if l.seen % 10 == 0 {
                l.dropped += 1;
            } else if l.seen % 7 == 0 {
                l.late += 1;
                held.push((data, from, now + LOSS_TIMEOUT_NS + MS));
            } else {
                s.send_slice(&data, from).unwrap();
            }
        }
        held.retain(|(data, from, at)| {
            if now < *at {
                return true;
            }
            s.send_slice(data, *from).unwrap();
            false
        });
        moved
    });
    let (result, out) = run(App::UdpRr, &mut world, NetOptions { count: 100, msg: 16, ..net() });
    result.unwrap();
    let (transactions, lost, stale, ..) = the_rrs(&out)[0];
    let l = lossy.borrow();
    assert_eq!(transactions, 100);
    assert_eq!(l.seen, transactions + lost, "each request answered in time or lost");
    assert_eq!(lost, l.dropped + l.late);
    assert!(l.dropped >= 10 && l.late >= 10, "{} dropped, {} late", l.dropped, l.late);
    // The last late answer may come after the test ended.
    assert!(stale == l.late || stale + 1 == l.late, "{stale} stale of {} late", l.late);
    assert_eq!(out.figure("net.udp_rr_lost", "fake"), f64::from(lost));
}

#[test]
fn without_an_echo_it_ends_after_its_setup_tries_and_a_long_message_is_refused() {
    let mut world = World::plain();
    let (result, out) = run(App::UdpRr, &mut world, NetOptions { count: 10, ..net() });
    assert_eq!(result.unwrap_err(), format!("udp-rr: no answer to {SETUP_TRIES_MAX} requests: is the echo at 10.0.0.2:7?"));
    assert!(the_rrs(&out).is_empty());
    assert_eq!(world.local.sockets.iter().count(), 0, "the socket is removed");
    let (result, _) = run(App::UdpRr, &mut World::plain(), NetOptions { msg: 1473, ..net() });
    assert!(result.unwrap_err().contains("more than one datagram holds (1472)"));
}
