//! Strict decimal parsing shared by tx-id and permission parsing.

/// Parses a non-empty run of ASCII digits into a `u32`.
///
/// Signs, spaces, hex prefixes and overflow are all rejected: the values
/// come from another domain and "mostly a number" is not a number.
pub(crate) fn parse_u32(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() {
        return None;
    }
    let mut value: u32 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u32::from(b - b'0'))?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::parse_u32;

    #[test]
    fn accepts_plain_digits() {
        assert_eq!(parse_u32(b"0"), Some(0));
        assert_eq!(parse_u32(b"42"), Some(42));
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [&b""[..], b"-1", b"+1", b" 1", b"1 ", b"0x10", b"4294967296", b"99999999999999999999", b"1\0"] {
            assert_eq!(parse_u32(bad), None, "{bad:?}");
        }
    }
}
