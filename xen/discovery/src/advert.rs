//! A guest's advert: one xenstore node, one line of `key=value` words:
//! `version=1 group=lab mac=00:16:3e:c0:00:10 ipv4=198.18.0.10`.

use alloc::format;
use alloc::string::{String, ToString};
use core::fmt;
use core::net::Ipv4Addr;

use xen_proto::values::{parse_mac, parse_u32, Mac};

/// An advert longer than this is rejected unread.
pub const MAX_ADVERT_LEN: usize = 256;
/// Longest group name.
pub const MAX_GROUP_LEN: usize = 32;

/// Why an advert (or a group name) was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdvertError {
    #[error("longer than {} bytes", MAX_ADVERT_LEN)]
    TooLong,
    #[error("not printable ASCII")]
    NotText,
    /// A word without `=`, or a key given twice.
    #[error("not `key=value` words with distinct keys")]
    Malformed,
    #[error("no `{0}`")]
    Missing(&'static str),
    #[error("bad `{0}` value")]
    BadValue(&'static str),
    /// Group names are 1..=32 of `A-Z a-z 0-9 . _ -`.
    #[error("group names are 1-{} of A-Z a-z 0-9 . _ -", MAX_GROUP_LEN)]
    BadGroup,
}

/// A validated group name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Group(String);

impl Group {
    pub fn new(name: &str) -> Result<Group, AdvertError> {
        let ok =
            (1..=MAX_GROUP_LEN).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if ok {
            Ok(Group(name.to_string()))
        } else {
            Err(AdvertError::BadGroup)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    pub version: u32,
    pub group: Group,
    pub mac: [u8; 6],
    pub ipv4: Option<[u8; 4]>,
}

/// A dotted quad, as `Ipv4Addr` parses it: four decimals 0-255 without
/// leading zeros or signs.
fn parse_ipv4(s: &str) -> Option<[u8; 4]> {
    s.parse::<Ipv4Addr>().ok().map(|a| a.octets())
}

impl Advert {
    /// The node's value.
    pub fn to_value(&self) -> String {
        let mut s = format!("version={} group={} mac={}", self.version, self.group, Mac(self.mac));
        if let Some(ip) = self.ipv4 {
            s.push_str(&format!(" ipv4={}", Ipv4Addr::from(ip)));
        }
        s
    }

    /// Parses a node's value. Unknown keys are skipped (a newer guest may
    /// say more); known keys must be well-formed and appear once.
    pub fn parse(value: &[u8]) -> Result<Advert, AdvertError> {
        let value = value.strip_suffix(&[0]).unwrap_or(value);
        if value.len() > MAX_ADVERT_LEN {
            return Err(AdvertError::TooLong);
        }
        if !value.iter().all(|b| (0x20..0x7f).contains(b)) {
            return Err(AdvertError::NotText);
        }
        let text = core::str::from_utf8(value).map_err(|_| AdvertError::NotText)?;
        let (mut version, mut group, mut mac, mut ipv4) = (None, None, None, None);
        for word in text.split(' ').filter(|w| !w.is_empty()) {
            let (key, val) = word.split_once('=').ok_or(AdvertError::Malformed)?;
            let slot_taken = match key {
                "version" => version.replace(parse_u32(val.as_bytes()).ok_or(AdvertError::BadValue("version"))?).is_some(),
                "group" => group.replace(Group::new(val)?).is_some(),
                "mac" => mac.replace(parse_mac(val.as_bytes()).ok_or(AdvertError::BadValue("mac"))?).is_some(),
                "ipv4" => ipv4.replace(parse_ipv4(val).ok_or(AdvertError::BadValue("ipv4"))?).is_some(),
                _ => false,
            };
            if slot_taken {
                return Err(AdvertError::Malformed);
            }
        }
        Ok(Advert {
            version: version.ok_or(AdvertError::Missing("version"))?,
            group: group.ok_or(AdvertError::Missing("group"))?,
            mac: mac.ok_or(AdvertError::Missing("mac"))?,
            ipv4,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::boxed::Box;
    use alloc::string::ToString;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::sample::select;
    use proptest::test_runner::{FileFailurePersistence, RngAlgorithm};

    fn lab() -> Advert {
        Advert {
            version: 1,
            group: Group::new("lab").unwrap(),
            mac: [0, 0x16, 0x3e, 0xc0, 0, 0x10],
            ipv4: Some([198, 18, 0, 10]),
        }
    }

    #[test]
    fn round_trip() {
        let a = lab();
        assert_eq!(a.to_value(), "version=1 group=lab mac=00:16:3e:c0:00:10 ipv4=198.18.0.10");
        assert_eq!(Advert::parse(a.to_value().as_bytes()), Ok(a.clone()));
        let no_ip = Advert { ipv4: None, ..a };
        assert_eq!(Advert::parse(no_ip.to_value().as_bytes()), Ok(no_ip));
    }

    #[test]
    fn error_messages() {
        let all = [
            (AdvertError::TooLong, "longer than 256 bytes"),
            (AdvertError::NotText, "not printable ASCII"),
            (AdvertError::Malformed, "not `key=value` words with distinct keys"),
            (AdvertError::Missing("mac"), "no `mac`"),
            (AdvertError::BadValue("ipv4"), "bad `ipv4` value"),
            (AdvertError::BadGroup, "group names are 1-32 of A-Z a-z 0-9 . _ -"),
        ];
        for (e, message) in all {
            assert_eq!(e.to_string(), message);
        }
    }

    #[test]
    fn ipv4_is_a_plain_dotted_quad() {
        for (s, want) in [("0.0.0.0", [0, 0, 0, 0]), ("255.255.255.255", [255; 4]), ("198.18.0.10", [198, 18, 0, 10])] {
            assert_eq!(parse_ipv4(s), Some(want), "{s}");
        }
        for s in [
            "",
            "1.2.3",
            "1.2.3.4.",
            ".1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            "1.2.3.256",
            "1000.2.3.4",
            "01.2.3.4",
            "1.2.3.00",
            "+1.2.3.4",
            "1.2.3.-4",
            "1.2.3.4x",
            "0x1.2.3.4",
            "1.2.3.4/24",
            "::1",
        ] {
            assert_eq!(parse_ipv4(s), None, "{s}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            rng_algorithm: RngAlgorithm::XorShift,
            failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
            ..ProptestConfig::with_cases(2000)
        })]

        #[test]
        fn every_address_round_trips(ip in any::<[u8; 4]>()) {
            let a = Advert { ipv4: Some(ip), ..lab() };
            prop_assert_eq!(Advert::parse(a.to_value().as_bytes()), Ok(a));
        }

        /// Exactly the canonical spelling is accepted: four decimal octets
        /// as they print, nothing else.
        #[test]
        fn only_canonical_addresses_are_accepted(parts in vec(octet_or_junk(), 1..=5)) {
            let s = parts.join(".");
            let canonical = parts.len() == 4 && parts.iter().all(|p| p.parse::<u8>().is_ok_and(|n| n.to_string() == *p));
            prop_assert_eq!(parse_ipv4(&s).is_some(), canonical, "{}", s);
            if let Some(ip) = parse_ipv4(&s) {
                prop_assert_eq!(Ipv4Addr::from(ip).to_string(), s);
            }
        }
    }

    /// An octet as it prints, or up to four of digits, signs and spaces.
    fn octet_or_junk() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => any::<u8>().prop_map(|n| n.to_string()),
            1 => vec(select(&b"0123456789+- "[..]), 0..=4).prop_map(|b| String::from_utf8(b).unwrap()),
        ]
    }

    #[test]
    fn tolerated() {
        let parsed = Advert::parse(b"  group=lab  future=x version=1 mac=00:16:3E:C0:00:10\0").unwrap();
        assert_eq!(parsed.group.as_str(), "lab");
        assert_eq!(parsed.ipv4, None);
    }

    #[test]
    fn rejected() {
        let cases: &[(&[u8], AdvertError)] = &[
            (b"version=1 group=lab", AdvertError::Missing("mac")),
            (b"group=lab mac=00:16:3e:c0:00:10", AdvertError::Missing("version")),
            (b"version=1 mac=00:16:3e:c0:00:10", AdvertError::Missing("group")),
            (b"version=1 version=1 group=a mac=00:16:3e:c0:00:10", AdvertError::Malformed),
            (b"version=1 group=a mac=00:16:3e:c0:00:10 junk", AdvertError::Malformed),
            (b"version=x group=a mac=00:16:3e:c0:00:10", AdvertError::BadValue("version")),
            (b"version=1 group=a mac=00:16:3e:c0:00", AdvertError::BadValue("mac")),
            (b"version=1 group=a/b mac=00:16:3e:c0:00:10", AdvertError::BadGroup),
            (b"version=1 group= mac=00:16:3e:c0:00:10", AdvertError::BadGroup),
            (b"version=1 group=a mac=00:16:3e:c0:00:10 ipv4=1.2.3", AdvertError::BadValue("ipv4")),
            (b"version=1 group=a mac=00:16:3e:c0:00:10 ipv4=1.2.3.256", AdvertError::BadValue("ipv4")),
            (b"version=1 group=a mac=00:16:3e:c0:00:10 ipv4=01.2.3.4", AdvertError::BadValue("ipv4")),
            (b"version=1\ngroup=a", AdvertError::NotText),
            (b"version=1 group=\xff", AdvertError::NotText),
        ];
        for (input, want) in cases {
            assert_eq!(Advert::parse(input), Err(*want), "{}", String::from_utf8_lossy(input));
        }
        let long = alloc::vec![b'a'; MAX_ADVERT_LEN + 1];
        assert_eq!(Advert::parse(&long), Err(AdvertError::TooLong));
        assert_eq!(Group::new(&"g".repeat(MAX_GROUP_LEN)).map(|g| g.as_str().len()), Ok(MAX_GROUP_LEN));
        assert_eq!(Group::new(&"g".repeat(MAX_GROUP_LEN + 1)), Err(AdvertError::BadGroup));
    }
}
