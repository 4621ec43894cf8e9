//! Values of xenstore nodes shared by several protocols: decimals and MAC
//! addresses, parsed strictly (they come from other domains) and formatted
//! the way the toolstack writes them.

use core::fmt;

/// Parses `"00:16:3e:12:34:56"` (hex pairs, `:` separated, either case;
/// a trailing NUL tolerated).
pub fn parse_mac(s: &[u8]) -> Option<[u8; 6]> {
    let s = s.strip_suffix(&[0]).unwrap_or(s);
    if s.len() != 17 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (i, byte) in mac.iter_mut().enumerate() {
        let at = i * 3;
        if i > 0 && s[at - 1] != b':' {
            return None;
        }
        let hi = hex(s[at])?;
        let lo = hex(s[at + 1])?;
        *byte = hi << 4 | lo;
    }
    Some(mac)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses a decimal `u32` node value (digits only, trailing NUL ok).
pub fn parse_u32(s: &[u8]) -> Option<u32> {
    let s = s.strip_suffix(&[0]).unwrap_or(s);
    if s.is_empty() || s.len() > 10 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u32, |acc, d| acc.checked_mul(10)?.checked_add(u32::from(d - b'0')))
}

/// Formats a MAC address as `00:16:3e:12:34:56` (lower case).
pub struct Mac(pub [u8; 6]);

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        assert_eq!(parse_mac(b"00:16:3e:0a:Bc:fF"), Some([0x00, 0x16, 0x3e, 0x0a, 0xbc, 0xff]));
        assert_eq!(parse_mac(b"00:16:3e:00:00:01\0"), Some([0, 0x16, 0x3e, 0, 0, 1]));
        for bad in [
            &b""[..],
            b"00:16:3e:00:00",
            b"00:16:3e:00:00:001",
            b"00-16-3e-00-00-01",
            b"00:16:3e:00:00:0g",
            b"0:16:3e:00:00:01:",
            b"garbage garbage!!",
            b"00:16:3e:00:00:01\0\0",
            b" 0:16:3e:00:00:01",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn mac_round_trip() {
        let mac = [0x00, 0x16, 0x3e, 0xab, 0x01, 0xff];
        let text = alloc::format!("{}", Mac(mac));
        assert_eq!(text, "00:16:3e:ab:01:ff");
        assert_eq!(parse_mac(text.as_bytes()), Some(mac));
    }

    #[test]
    fn decimals() {
        assert_eq!(parse_u32(b"0"), Some(0));
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u32(b"12\0"), Some(12));
        for bad in [&b""[..], b"-1", b"1 ", b"0x10", b"99999999999"] {
            assert_eq!(parse_u32(bad), None);
        }
    }
}
