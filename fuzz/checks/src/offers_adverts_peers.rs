//! `offers_adverts_peers`: the text formats other domains write and we
//! parse — a peer's channel offer (`channel::offer`), a guest's advert and
//! dom0's peer lists (`discovery`), and the MAC and decimal values under
//! them (`xen_proto::values`).
//!
//! Raw inputs go to every parser; structured ones are built from valid
//! values, or from key/value words close to valid ones. Checked:
//!
//! - no parser panics;
//! - a parsed value written back with `to_value` parses to itself, and a
//!   valid value round-trips (`parse(to_value(x)) == x`);
//! - a rejection is consistent: the same bytes give the same answer, with
//!   or without the one trailing NUL a xenstore value may carry;
//! - peer lists are bounded, sorted and without duplicates, and the lists
//!   `peer_lists` derives from members hold exactly the other members of
//!   each group.

use arbitrary::Arbitrary;
use channel::offer::{Offer, MAX_OFFER_LEN};
use channel::{layout, ring};
use discovery::{peer_lists, Advert, Group, Member, Peer, PeerList, MAX_PEERS};
use xen_proto::values::{parse_mac, parse_u32, Mac};

/// discovery's limits (its `advert` module keeps them private).
const MAX_GROUP_LEN: usize = 32;
const MAX_ADVERT_LEN: usize = 256;

#[derive(Arbitrary, Debug)]
pub enum Input {
    /// The same bytes to every parser.
    Raw(Vec<u8>),
    /// An offer from values (valid or not).
    Offer {
        version: u8,
        nonce: u32,
        control_ref: u32,
        ring_pages: u8,
        port: Option<u32>,
        frame: u32,
    },
    /// Words `key=value` from a small vocabulary, joined by spaces.
    Words {
        words: Vec<Word>,
        to: Format,
    },
    Advert {
        version: u32,
        group: Vec<u8>,
        mac: [u8; 6],
        ipv4: Option<[u8; 4]>,
    },
    Peers(Vec<(u16, [u8; 6])>),
    Members(Vec<(u16, u8, [u8; 6])>),
    Values {
        n: u32,
        mac: [u8; 6],
    },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Format {
    Offer,
    Advert,
    PeerList,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct Word {
    key: Key,
    value: Value,
    /// Extra spaces before the word.
    spaces: u8,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Key {
    Version,
    Nonce,
    ControlRef,
    RingPages,
    EventChannel,
    Frame,
    Group,
    Mac,
    Ipv4,
    Domid(u16),
    V1,
    Other,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Value {
    Number(u32),
    Dash,
    Mac([u8; 6]),
    Ip([u8; 4]),
    Name(u8),
    Bytes(Vec<u8>),
}

fn word_text(w: &Word) -> Vec<u8> {
    let mut out = vec![b' '; usize::from(w.spaces % 3)];
    let key: String = match w.key {
        Key::Version => "version".into(),
        Key::Nonce => "nonce".into(),
        Key::ControlRef => "control-ref".into(),
        Key::RingPages => "ring-pages".into(),
        Key::EventChannel => "event-channel".into(),
        Key::Frame => "frame".into(),
        Key::Group => "group".into(),
        Key::Mac => "mac".into(),
        Key::Ipv4 => "ipv4".into(),
        Key::Domid(d) => format!("{d}"),
        Key::V1 => {
            out.extend_from_slice(b"v1");
            return out;
        }
        Key::Other => "x".into(),
    };
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    match &w.value {
        Value::Number(n) => out.extend_from_slice(format!("{n}").as_bytes()),
        Value::Dash => out.push(b'-'),
        Value::Mac(m) => out.extend_from_slice(format!("{}", Mac(*m)).as_bytes()),
        Value::Ip(ip) => out.extend_from_slice(format!("{}", std::net::Ipv4Addr::from(*ip)).as_bytes()),
        Value::Name(n) => out.extend_from_slice(["lab", "a", "web-1", "g.x_y"][usize::from(*n) % 4].as_bytes()),
        Value::Bytes(b) => out.extend_from_slice(&b[..b.len().min(40)]),
    }
    out
}

/// Runs one input.
pub fn check(data: &[u8]) {
    let Some(input) = crate::from_bytes::<Input>(data) else { return };
    match input {
        Input::Raw(bytes) => all_parsers(&bytes),
        Input::Offer { version, nonce, control_ref, ring_pages, port, frame } => {
            let o = Offer {
                version: u32::from(version % 3),
                nonce,
                control_ref,
                ring_pages: u32::from(ring_pages % 130),
                event_channel: port,
                max_frame: frame as usize,
            };
            let valid = o.version == layout::LAYOUT_VERSION
                && layout::valid_ring_pages(o.ring_pages)
                && (ring::ETH_FRAME..=ring::MAX_CHANNEL_FRAME).contains(&o.max_frame);
            let text = o.to_value();
            let parsed = Offer::parse(text.as_bytes());
            if valid {
                assert_eq!(parsed, Ok(o), "{text}");
            } else if o.version == layout::LAYOUT_VERSION {
                assert!(parsed.is_err(), "invalid offer accepted: {text}");
            } else {
                assert_eq!(parsed.map(|p| p.version), Ok(o.version), "{text}");
            }
            all_parsers(text.as_bytes());
        }
        Input::Words { words, to } => {
            let mut text: Vec<u8> = match to {
                Format::PeerList => b"v1".to_vec(),
                _ => Vec::new(),
            };
            for (i, w) in words.iter().take(12).enumerate() {
                if i > 0 || matches!(to, Format::PeerList) {
                    text.push(b' ');
                }
                text.extend(word_text(w));
            }
            all_parsers(&text);
        }
        Input::Advert { version, group, mac, ipv4 } => {
            let name: String = group
                .iter()
                .take(40)
                .map(|b| b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"[usize::from(*b) % 65] as char)
                .collect();
            match Group::new(&name) {
                Ok(group) => {
                    assert!((1..=MAX_GROUP_LEN).contains(&name.len()));
                    let a = Advert { version, group, mac, ipv4 };
                    let text = a.to_value();
                    assert_eq!(Advert::parse(text.as_bytes()), Ok(a), "{text}");
                    all_parsers(text.as_bytes());
                }
                Err(_) => assert!(name.is_empty() || name.len() > MAX_GROUP_LEN),
            }
        }
        Input::Peers(peers) => {
            let peers: Vec<Peer> = peers.iter().take(32).map(|&(domid, mac)| Peer { domid, mac }).collect();
            let distinct = peers.iter().map(|p| p.domid).collect::<std::collections::BTreeSet<_>>().len();
            let (list, left_out) = PeerList::new(peers);
            assert_eq!(list.peers().len() + left_out, distinct);
            peer_list_shape(&list);
            let text = list.to_value();
            assert_eq!(PeerList::parse(text.as_bytes()), Ok(list), "{text}");
            all_parsers(text.as_bytes());
        }
        Input::Members(ms) => {
            // One member per domain, as the daemon finds them.
            let mut seen = std::collections::BTreeSet::new();
            let members: Vec<Member> = ms
                .iter()
                .take(24)
                .filter(|m| seen.insert(m.0))
                .map(|&(domid, g, mac)| Member { domid, group: Group::new(["a", "b", "c"][usize::from(g) % 3]).unwrap(), mac })
                .collect();
            let (lists, left_out) = peer_lists(&members);
            assert_eq!(lists.len(), members.len(), "one list per member");
            for (domid, list) in &lists {
                peer_list_shape(list);
                let me = members.iter().find(|m| m.domid == *domid).expect("a list for a member");
                for p in list.peers() {
                    assert_ne!(p.domid, *domid, "a guest listed to itself");
                    assert!(
                        members.iter().any(|m| m.domid == p.domid && m.mac == p.mac && m.group == me.group),
                        "listed {p:?}, not a member of {domid}'s group"
                    );
                }
                let text = list.to_value();
                assert_eq!(PeerList::parse(text.as_bytes()).as_ref(), Ok(list));
            }
            for (domid, n) in left_out {
                assert!(n > 0);
                assert_eq!(lists[&domid].peers().len(), MAX_PEERS);
            }
        }
        Input::Values { n, mac } => {
            assert_eq!(parse_u32(format!("{n}").as_bytes()), Some(n));
            assert_eq!(parse_mac(format!("{}", Mac(mac)).as_bytes()), Some(mac));
            assert_eq!(parse_mac(format!("{}", Mac(mac)).to_uppercase().as_bytes()), Some(mac));
        }
    }
}

fn peer_list_shape(list: &PeerList) {
    let p = list.peers();
    assert!(p.len() <= MAX_PEERS);
    assert!(p.windows(2).all(|w| w[0].domid < w[1].domid), "peers not sorted and distinct: {p:?}");
}

/// One parser's answers on `bytes`: consistent, and canonical when Ok.
fn consistent<T: PartialEq + std::fmt::Debug, E: PartialEq + std::fmt::Debug>(
    bytes: &[u8],
    parse: impl Fn(&[u8]) -> Result<T, E>,
    write: impl Fn(&T) -> String,
) -> Option<T> {
    let first = parse(bytes);
    assert_eq!(parse(bytes), first, "a parser answered differently on the same bytes");
    if bytes.last() != Some(&0) {
        let mut with_nul = bytes.to_vec();
        with_nul.push(0);
        assert_eq!(parse(&with_nul), first, "a trailing NUL changed the answer");
    }
    let v = first.ok()?;
    let text = write(&v);
    assert_eq!(parse(text.as_bytes()).as_ref(), Ok(&v), "{text:?} does not parse back to the value it was written from");
    Some(v)
}

fn all_parsers(bytes: &[u8]) {
    if let Some(o) = consistent(bytes, Offer::parse, Offer::to_value) {
        assert!(bytes.strip_suffix(&[0]).unwrap_or(bytes).len() <= MAX_OFFER_LEN);
        if o.version == layout::LAYOUT_VERSION {
            assert!(layout::valid_ring_pages(o.ring_pages));
            assert!((ring::ETH_FRAME..=ring::MAX_CHANNEL_FRAME).contains(&o.max_frame));
        }
    }
    if let Some(a) = consistent(bytes, Advert::parse, Advert::to_value) {
        assert!(a.to_value().len() <= MAX_ADVERT_LEN);
    }
    if let Some(l) = consistent(bytes, PeerList::parse, PeerList::to_value) {
        peer_list_shape(&l);
    }
    let _ = consistent(bytes, |b| parse_mac(b).ok_or(()), |m| format!("{}", Mac(*m)));
    let _ = consistent(bytes, |b| parse_u32(b).ok_or(()), |n| format!("{n}"));
}
