//! The xenstore half of the handshake: each side writes one node,
//! `/local/domain/<me>/data/cohort/chan/<peer>`, readable by that peer only:
//! `version=1 nonce=7 control-ref=12 ring-pages=16 event-channel=5 frame=1514`.
//! The lower domid allocates the event channel and names it; the higher
//! one binds to it and writes `event-channel=-`. `frame` is the largest
//! frame the writer accepts (1514 when absent).

use alloc::format;
use alloc::string::String;
use core::fmt;

use xen_proto::iface::{DomId, GrantRef, Port};
use xen_proto::values::parse_u32;

use crate::{layout, ring};

/// An offer longer than this is rejected unread.
pub const MAX_OFFER_LEN: usize = 128;

/// Where `owner` offers a channel to `peer`.
pub fn offer_path(owner: DomId, peer: DomId) -> String {
    format!("/local/domain/{owner}/data/cohort/chan/{peer}")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offer {
    pub version: u32,
    /// Changes with every new offer to the same peer, so a stale offer
    /// (or control page) is never taken for a new one.
    pub nonce: u32,
    pub control_ref: GrantRef,
    pub ring_pages: u32,
    /// Set by the lower domid only.
    pub event_channel: Option<Port>,
    /// The largest frame the writer accepts.
    pub max_frame: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfferError {
    TooLong,
    Malformed,
    Missing(&'static str),
    BadValue(&'static str),
}

impl fmt::Display for OfferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OfferError::TooLong => write!(f, "offer longer than {MAX_OFFER_LEN} bytes"),
            OfferError::Malformed => f.write_str("offer is not `key=value` words with distinct keys"),
            OfferError::Missing(k) => write!(f, "offer has no `{k}`"),
            OfferError::BadValue(k) => write!(f, "offer has a bad `{k}`"),
        }
    }
}

impl Offer {
    pub fn to_value(&self) -> String {
        let port = match self.event_channel {
            Some(p) => format!("{p}"),
            None => String::from("-"),
        };
        format!(
            "version={} nonce={} control-ref={} ring-pages={} event-channel={port} frame={}",
            self.version, self.nonce, self.control_ref, self.ring_pages, self.max_frame
        )
    }

    /// Parses a peer's offer. The version is parsed first and alone
    /// decides compatibility: an offer of another version is returned as
    /// parsed as far as its version, for a clean refusal.
    pub fn parse(value: &[u8]) -> Result<Offer, OfferError> {
        let value = value.strip_suffix(&[0]).unwrap_or(value);
        if value.len() > MAX_OFFER_LEN {
            return Err(OfferError::TooLong);
        }
        let text = core::str::from_utf8(value).map_err(|_| OfferError::Malformed)?;
        let mut fields: [Option<&str>; 6] = [None; 6];
        const KEYS: [&str; 6] = ["version", "nonce", "control-ref", "ring-pages", "event-channel", "frame"];
        for word in text.split(' ').filter(|w| !w.is_empty()) {
            let (key, val) = word.split_once('=').ok_or(OfferError::Malformed)?;
            if let Some(i) = KEYS.iter().position(|k| *k == key) {
                if fields[i].replace(val).is_some() {
                    return Err(OfferError::Malformed);
                }
            }
        }
        let number = |i: usize| -> Result<u32, OfferError> {
            let v = fields[i].ok_or(OfferError::Missing(KEYS[i]))?;
            parse_u32(v.as_bytes()).ok_or(OfferError::BadValue(KEYS[i]))
        };
        let version = number(0)?;
        if version != layout::LAYOUT_VERSION {
            return Ok(Offer { version, nonce: 0, control_ref: 0, ring_pages: 0, event_channel: None, max_frame: 0 });
        }
        let ring_pages = number(3)?;
        if !layout::valid_ring_pages(ring_pages) {
            return Err(OfferError::BadValue("ring-pages"));
        }
        let event_channel = match fields[4].ok_or(OfferError::Missing("event-channel"))? {
            "-" => None,
            _ => Some(number(4)?),
        };
        let max_frame = match fields[5] {
            None => ring::ETH_FRAME,
            Some(_) => number(5)? as usize,
        };
        if !(ring::ETH_FRAME..=ring::MAX_CHANNEL_FRAME).contains(&max_frame) {
            return Err(OfferError::BadValue("frame"));
        }
        Ok(Offer { version, nonce: number(1)?, control_ref: number(2)?, ring_pages, event_channel, max_frame })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let o = Offer { version: 1, nonce: 7, control_ref: 12, ring_pages: 16, event_channel: Some(5), max_frame: 9014 };
        assert_eq!(o.to_value(), "version=1 nonce=7 control-ref=12 ring-pages=16 event-channel=5 frame=9014");
        assert_eq!(Offer::parse(o.to_value().as_bytes()), Ok(o));
        let higher = Offer { event_channel: None, ..o };
        assert_eq!(Offer::parse(higher.to_value().as_bytes()), Ok(higher));
        // Without `frame`: standard frames.
        let plain = Offer::parse(b"version=1 nonce=1 control-ref=2 ring-pages=4 event-channel=-").unwrap();
        assert_eq!(plain.max_frame, ring::ETH_FRAME);
    }

    #[test]
    fn other_versions_parse_as_far_as_the_version() {
        let o = Offer::parse(b"version=2 shape=new").unwrap();
        assert_eq!(o.version, 2);
    }

    #[test]
    fn rejected() {
        let cases: &[(&[u8], OfferError)] = &[
            (b"nonce=1", OfferError::Missing("version")),
            (b"version=1 nonce=1 control-ref=2 ring-pages=3 event-channel=-", OfferError::BadValue("ring-pages")),
            (b"version=1 nonce=1 control-ref=2 ring-pages=128 event-channel=-", OfferError::BadValue("ring-pages")),
            (b"version=1 nonce=1 control-ref=2 ring-pages=0 event-channel=-", OfferError::BadValue("ring-pages")),
            (b"version=1 nonce=1 control-ref=2 ring-pages=4", OfferError::Missing("event-channel")),
            (b"version=1 nonce=x control-ref=2 ring-pages=4 event-channel=-", OfferError::BadValue("nonce")),
            (b"version=1 nonce=1 control-ref=2 ring-pages=4 event-channel=-1", OfferError::BadValue("event-channel")),
            (b"version=1 nonce=1 control-ref=2 ring-pages=4 event-channel=- frame=1000", OfferError::BadValue("frame")),
            (b"version=1 nonce=1 control-ref=2 ring-pages=4 event-channel=- frame=99999", OfferError::BadValue("frame")),
            (b"version=1 version=1", OfferError::Malformed),
            (b"version=1 junk", OfferError::Malformed),
            (b"\xff", OfferError::Malformed),
        ];
        for (input, want) in cases {
            assert_eq!(Offer::parse(input), Err(*want), "{}", String::from_utf8_lossy(input));
        }
        assert_eq!(Offer::parse(&[b' '; MAX_OFFER_LEN + 1]), Err(OfferError::TooLong));
    }
}
