//! `app=echo`, the services: TCP and UDP echo and the stream sink answer
//! clients at the other end until the platform asks the guest to stop.

mod support;

use std::cell::RefCell;
use std::rc::Rc;

use apps::pattern::CheckKind;
use apps::stream::Stream;
use apps::transfer::Transfer;
use cohort_boot::cmdline::App;
use figures::Event;
use smoltcp::socket::udp;
use smoltcp::wire::IpAddress;
use support::{net, settings, Captured, World, LOCAL, MS};

/// What the remote clients got: the transfer's and the stream's match, the
/// UDP answer.
#[derive(Default)]
struct Got {
    transfer: Option<bool>,
    stream: Option<(u64, bool)>,
    udp: Option<Vec<u8>>,
}

#[test]
fn the_services_answer_clients_until_asked_to_stop() {
    let mut world = World::plain();
    let got = Rc::new(RefCell::new(Got::default()));
    let g = got.clone();
    // The clients start once the services listen (1 ms in), each once.
    let mut started = false;
    let mut transfer: Option<Transfer> = None;
    let mut stream: Option<Stream> = None;
    let udp_socket = {
        let buf = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 4], vec![0; 4096]);
        let h = world.remote_parts().1.add(udp::Socket::new(buf(), buf()));
        world.remote.sockets.get_mut::<udp::Socket>(h).bind(5000).unwrap();
        h
    };
    world.remote_app(move |iface, sockets, now| {
        if now < MS {
            return false;
        }
        let mut got = g.borrow_mut();
        if !started {
            started = true;
            transfer = Some(Transfer::start(iface, sockets, LOCAL, 7, 200_000, 40000).unwrap());
            stream = Some(Stream::start(iface, sockets, LOCAL, 9, 300_000, CheckKind::Sha256, 40001).unwrap());
            let to = (IpAddress::v4(LOCAL[0], LOCAL[1], LOCAL[2], LOCAL[3]), 7);
            sockets.get_mut::<udp::Socket>(udp_socket).send_slice(b"ping", to).unwrap();
        }
        let mut moved = false;
        if let Some(t) = transfer.as_mut() {
            moved |= t.service(sockets, now).unwrap();
            if t.done() {
                got.transfer = transfer.take().map(|t| t.report(sockets).matches());
            }
        }
        if let Some(s) = stream.as_mut() {
            moved |= s.service(sockets, now).unwrap();
            if s.done() {
                let report = stream.take().unwrap().finish(sockets);
                got.stream = Some((report.sink_bytes, report.matches()));
            }
        }
        if let Ok((data, _)) = sockets.get_mut::<udp::Socket>(udp_socket).recv() {
            got.udp = Some(data.to_vec());
            moved = true;
        }
        moved
    });
    let mut out = Captured::default();
    let clock = world.clock.clone();
    let g = got.clone();
    let result = apps::run(App::Echo, &mut world, &settings(net()), &clock, &mut out, &mut || {
        let got = g.borrow();
        // Asked to stop once every client has its answer.
        got.transfer.is_some() && got.stream.is_some() && got.udp.is_some()
    });
    result.unwrap();
    let got = got.borrow();
    assert_eq!(got.transfer, Some(true), "the transfer came back intact");
    assert_eq!(got.stream, Some((300_000, true)), "the sink's count and SHA-256");
    assert_eq!(got.udp.as_deref(), Some(&b"ping"[..]));
    let results = out.results();
    let served = results.iter().find(|e| matches!(e, Event::Served { .. })).unwrap_or_else(|| panic!("{}", out.text()));
    let Event::Served { tcp_bytes, udp_packets, sink_bytes, sink_streams } = served else { unreachable!() };
    assert_eq!((*tcp_bytes, *udp_packets, *sink_bytes, *sink_streams), (200_000, 1, 300_000, 1));
    assert_eq!(results.last(), Some(&Event::App { app: "echo".into(), ok: true, error: None }));
    assert!(world.local.device.shut_down);
}
