//! dom0's group policy: which domain is in which group, decided by dom0,
//! not by the guest's advert.
//!
//! A text file, one entry a line; blank lines and lines whose first
//! non-blank character is `#` are skipped:
//!
//! ```text
//! # KIND  KEY                                   GROUP
//! name    web1                                  lab
//! uuid    6e4b1c1a-2f3d-4c5e-8a9b-0c1d2e3f4a5b  lab
//! ```
//!
//! `name` matches the domain's name as the toolstack wrote it
//! (`/local/domain/<id>/name`), `uuid` its UUID (`/local/domain/<id>/vm`,
//! `/vm/<uuid>`). A domain that a `uuid` entry lists gets that entry's group,
//! whatever its name says. Each key appears once. The file is bounded
//! ([`MAX_POLICY_LEN`] bytes, [`MAX_POLICY_ENTRIES`] entries) and every
//! fault is an error naming its line.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use core::fmt;

use crate::Group;

/// A policy file longer than this is rejected unread.
pub const MAX_POLICY_LEN: usize = 64 * 1024;
/// Entries in one policy at most.
pub const MAX_POLICY_ENTRIES: usize = 1024;
/// Longest domain name (xenstore's own limit on a node is larger; the
/// toolstack's names are short).
pub const MAX_NAME_LEN: usize = 64;

/// What is wrong with one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("not printable ASCII")]
    NotText,
    #[error("not `name NAME GROUP` or `uuid UUID GROUP`")]
    Malformed,
    #[error("names are 1-{} printable characters without blanks", MAX_NAME_LEN)]
    BadName,
    #[error("not a UUID (8-4-4-4-12 hex digits)")]
    BadUuid,
    #[error("group names are 1-{} of A-Z a-z 0-9 . _ -", crate::advert::MAX_GROUP_LEN)]
    BadGroup,
    /// The same `name` or `uuid` on an earlier line.
    #[error("listed already on line {0}")]
    Duplicate(usize),
    #[error("more than {} entries", MAX_POLICY_ENTRIES)]
    TooMany,
}

/// Why a policy was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("longer than {} bytes", MAX_POLICY_LEN)]
    TooLong,
    /// Lines count from 1.
    #[error("line {line}: {error}")]
    Line { line: usize, error: LineError },
}

/// A parsed policy: name → group and UUID → group (with the line of each
/// entry, for error messages: two policies that differ only in lines are
/// not equal; compare their [`Display`](fmt::Display) to ignore them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Key → (group, line).
    names: BTreeMap<String, (Group, usize)>,
    uuids: BTreeMap<String, (Group, usize)>,
}

/// `s` as a UUID in lower case, if it is one (8-4-4-4-12 hex digits).
pub fn parse_uuid(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let ok = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { *c == b'-' } else { c.is_ascii_hexdigit() });
    ok.then(|| s.to_ascii_lowercase())
}

/// The UUID of a domain from its `vm` node's value, `/vm/<uuid>`.
pub fn uuid_of_vm_path(value: &[u8]) -> Option<String> {
    let value = value.strip_suffix(&[0]).unwrap_or(value);
    let path = core::str::from_utf8(value).ok()?;
    parse_uuid(path.strip_prefix("/vm/")?)
}

fn valid_name(s: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
}

impl Policy {
    /// Parses a policy file's contents.
    pub fn parse(text: &[u8]) -> Result<Policy, PolicyError> {
        if text.len() > MAX_POLICY_LEN {
            return Err(PolicyError::TooLong);
        }
        let mut policy = Policy::default();
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            let n = i + 1;
            policy.add_line(line, n).map_err(|error| PolicyError::Line { line: n, error })?;
        }
        Ok(policy)
    }

    fn add_line(&mut self, line: &[u8], n: usize) -> Result<(), LineError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !line.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)) {
            return Err(LineError::NotText);
        }
        let line = core::str::from_utf8(line).map_err(|_| LineError::NotText)?;
        let mut words = line.split_ascii_whitespace();
        let Some(kind) = words.next() else { return Ok(()) };
        if kind.starts_with('#') {
            return Ok(());
        }
        let (Some(key), Some(group), None) = (words.next(), words.next(), words.next()) else {
            return Err(LineError::Malformed);
        };
        let key = match kind {
            "name" if valid_name(key) => key.to_string(),
            "name" => return Err(LineError::BadName),
            "uuid" => parse_uuid(key).ok_or(LineError::BadUuid)?,
            _ => return Err(LineError::Malformed),
        };
        let group = Group::new(group).map_err(|_| LineError::BadGroup)?;
        let full = self.len() >= MAX_POLICY_ENTRIES;
        let map = if kind == "name" { &mut self.names } else { &mut self.uuids };
        if let Some((_, first)) = map.get(&key) {
            return Err(LineError::Duplicate(*first));
        }
        if full {
            return Err(LineError::TooMany);
        }
        map.insert(key, (group, n));
        Ok(())
    }

    /// Entries in the policy.
    pub fn len(&self) -> usize {
        self.names.len() + self.uuids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The group of the domain with this name and UUID (either may be
    /// unknown): its `uuid` entry's, else its `name` entry's, else none.
    pub fn group_of(&self, name: Option<&str>, uuid: Option<&str>) -> Option<&Group> {
        let by_uuid = uuid.and_then(parse_uuid).and_then(|u| self.uuids.get(&u));
        by_uuid.or_else(|| name.and_then(|n| self.names.get(n))).map(|(g, _)| g)
    }
}

impl fmt::Display for Policy {
    /// The canonical file: name entries, then uuid entries, each sorted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (kind, map) in [("name", &self.names), ("uuid", &self.uuids)] {
            for (key, (group, _)) in map {
                writeln!(f, "{kind} {key} {group}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::boxed::Box;
    use alloc::format;
    use alloc::string::ToString;
    use alloc::vec::Vec;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::sample::select;
    use proptest::test_runner::{FileFailurePersistence, RngAlgorithm};

    const U1: &str = "6e4b1c1a-2f3d-4c5e-8a9b-0c1d2e3f4a5b";

    fn g(name: &str) -> Group {
        Group::new(name).unwrap()
    }

    #[test]
    fn lookups() {
        let text = format!(
            "# dom0's groups\n\nname web1 lab\r\n  name\tdb lab  \nname other-1 other\nuuid {} other\n   # indented comment\n",
            U1.to_ascii_uppercase()
        );
        let p = Policy::parse(text.as_bytes()).unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(p.group_of(Some("web1"), None), Some(&g("lab")));
        assert_eq!(p.group_of(Some("db"), Some("00000000-0000-0000-0000-000000000000")), Some(&g("lab")));
        assert_eq!(p.group_of(Some("nobody"), None), None);
        assert_eq!(p.group_of(None, None), None);
        // Names are exact: case and prefixes matter.
        assert_eq!(p.group_of(Some("Web1"), None), None);
        assert_eq!(p.group_of(Some("web"), None), None);
        // The UUID entry wins over the name's; UUIDs match in any case.
        assert_eq!(p.group_of(Some("web1"), Some(U1)), Some(&g("other")));
        assert_eq!(p.group_of(None, Some(&U1.to_ascii_uppercase())), Some(&g("other")));
        assert_eq!(p.to_string(), format!("name db lab\nname other-1 other\nname web1 lab\nuuid {U1} other\n"));
        assert_eq!(Policy::parse(p.to_string().as_bytes()).map(|q| q.to_string()), Ok(p.to_string()));
        assert!(Policy::parse(b"").unwrap().is_empty());
        assert!(Policy::parse(b"# nothing\n\n").unwrap().is_empty());
    }

    #[test]
    fn vm_paths() {
        assert_eq!(uuid_of_vm_path(format!("/vm/{U1}").as_bytes()).as_deref(), Some(U1));
        assert_eq!(uuid_of_vm_path(format!("/vm/{U1}\0").as_bytes()).as_deref(), Some(U1));
        for bad in [
            &b"/vm/"[..],
            b"",
            b"6e4b1c1a-2f3d-4c5e-8a9b-0c1d2e3f4a5b",
            b"/vm/6e4b1c1a-2f3d-4c5e-8a9b-0c1d2e3f4a5",
            b"/vm/\xff",
        ] {
            assert_eq!(uuid_of_vm_path(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn errors_name_their_line() {
        let line = |line, error| Err(PolicyError::Line { line, error });
        let cases: &[(&str, Result<Policy, PolicyError>)] = &[
            ("name a lab\nname a lab\n", line(2, LineError::Duplicate(1))),
            ("name a lab\n\nname b\n", line(3, LineError::Malformed)),
            ("name a lab extra\n", line(1, LineError::Malformed)),
            ("host a lab\n", line(1, LineError::Malformed)),
            ("name\n", line(1, LineError::Malformed)),
            ("name a la/b\n", line(1, LineError::BadGroup)),
            ("uuid 1234 lab\n", line(1, LineError::BadUuid)),
            (&format!("uuid {U1} a\nuuid {} b\n", U1.to_ascii_uppercase()), line(2, LineError::Duplicate(1))),
            (&format!("name {} lab\n", "n".repeat(MAX_NAME_LEN + 1)), line(1, LineError::BadName)),
            ("# ok\nname caf\u{e9} lab\n", line(2, LineError::NotText)),
            ("name a\x07 lab\n", line(1, LineError::NotText)),
        ];
        for (text, want) in cases {
            assert_eq!(&Policy::parse(text.as_bytes()), want, "{text:?}");
        }
        assert_eq!(PolicyError::Line { line: 7, error: LineError::Duplicate(3) }.to_string(), "line 7: listed already on line 3");
        assert_eq!(PolicyError::TooLong.to_string(), "longer than 65536 bytes");
    }

    #[test]
    fn bounded() {
        let full: String = (0..MAX_POLICY_ENTRIES).map(|i| format!("name n{i} g\n")).collect();
        assert_eq!(Policy::parse(full.as_bytes()).map(|p| p.len()), Ok(MAX_POLICY_ENTRIES));
        let over = format!("{full}name one-more g\n");
        assert_eq!(
            Policy::parse(over.as_bytes()),
            Err(PolicyError::Line { line: MAX_POLICY_ENTRIES + 1, error: LineError::TooMany })
        );
        let long: Vec<u8> = b"#".iter().copied().cycle().take(MAX_POLICY_LEN + 1).collect();
        assert_eq!(Policy::parse(&long), Err(PolicyError::TooLong));
        assert!(Policy::parse(&long[..MAX_POLICY_LEN]).is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            rng_algorithm: RngAlgorithm::XorShift,
            failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
            ..ProptestConfig::with_cases(3000)
        })]

        /// Any bytes: a policy or an error, never a panic; an error on a
        /// line names a line that exists.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
            if let Err(PolicyError::Line { line, .. }) = Policy::parse(&bytes) {
                prop_assert!(line >= 1 && line <= bytes.split(|&b| b == b'\n').count());
            }
        }

        /// Near-miss text built from the format's own pieces: never a
        /// panic, and what parses prints back to the same policy.
        #[test]
        fn near_misses_never_panic_and_round_trip(lines in vec(vec(word(), 0..5), 0..12)) {
            let text: String = lines.iter().map(|w| w.join(" ") + "\n").collect();
            if let Ok(p) = Policy::parse(text.as_bytes()) {
                prop_assert_eq!(Policy::parse(p.to_string().as_bytes()).map(|q| q.to_string()), Ok(p.to_string()));
                prop_assert!(p.len() <= lines.len());
            }
        }
    }

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            select(&["name", "uuid", "#", "lab", "a", "web1", U1, "x/y", "", "\t", "\r", "\u{e9}", "\0"][..])
                .prop_map(String::from),
            "[ -~]{0,12}",
        ]
    }
}
