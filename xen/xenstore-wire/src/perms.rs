//! Node permissions as carried by `XS_GET_PERMS` / `XS_SET_PERMS`.
//!
//! Each entry is one letter (`n` none, `r` read, `w` write, `b` both)
//! followed by a decimal domain id, e.g. `r5`. The first entry names the
//! owner and its letter gives the access of every domain not listed.

use alloc::vec::Vec;
use core::fmt;

use crate::decimal;
use crate::error::Error;

/// Access granted to one domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// `n`: no access.
    None,
    /// `r`: read only.
    Read,
    /// `w`: write only.
    Write,
    /// `b`: read and write.
    Both,
}

impl Access {
    /// The wire letter for this access.
    pub const fn letter(self) -> u8 {
        match self {
            Access::None => b'n',
            Access::Read => b'r',
            Access::Write => b'w',
            Access::Both => b'b',
        }
    }

    /// Parses a wire letter.
    pub fn from_letter(b: u8) -> Option<Access> {
        match b {
            b'n' => Some(Access::None),
            b'r' => Some(Access::Read),
            b'w' => Some(Access::Write),
            b'b' => Some(Access::Both),
            _ => None,
        }
    }
}

/// One permission entry: a domain and what it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Permission {
    /// Domain id (`domid_t` is 16 bits).
    pub domid: u16,
    /// Access granted.
    pub access: Access,
}

impl Permission {
    /// Creates an entry.
    pub const fn new(domid: u16, access: Access) -> Permission {
        Permission { domid, access }
    }

    /// Parses one entry such as `b0` (without its NUL terminator).
    ///
    /// The domid must be plain decimal digits fitting in 16 bits.
    pub fn parse(s: &[u8]) -> Result<Permission, Error> {
        let (&letter, digits) = s.split_first().ok_or(Error::InvalidPermission)?;
        let access = Access::from_letter(letter).ok_or(Error::InvalidPermission)?;
        let domid = decimal::parse_u32(digits).and_then(|d| u16::try_from(d).ok()).ok_or(Error::InvalidPermission)?;
        Ok(Permission { domid, access })
    }

    /// Appends the wire form (without NUL) to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(self.access.letter());
        push_decimal(out, u32::from(self.domid));
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", char::from(self.access.letter()), self.domid)
    }
}

/// Appends the decimal digits of `v` to `out` without allocating a String.
pub(crate) fn push_decimal(out: &mut Vec<u8>, mut v: u32) {
    let mut digits = [0u8; 10];
    let mut n = 0;
    loop {
        // n < 10 always holds: u32::MAX has 10 digits.
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend(digits[..n].iter().rev());
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn parse_each_letter() {
        assert_eq!(Permission::parse(b"b0"), Ok(Permission::new(0, Access::Both)));
        assert_eq!(Permission::parse(b"r5"), Ok(Permission::new(5, Access::Read)));
        assert_eq!(Permission::parse(b"w3"), Ok(Permission::new(3, Access::Write)));
        assert_eq!(Permission::parse(b"n7"), Ok(Permission::new(7, Access::None)));
        assert_eq!(Permission::parse(b"r65535"), Ok(Permission::new(65535, Access::Read)));
        // DOMID_SELF-style large ids still fit in 16 bits.
        assert_eq!(Permission::parse(b"b32752"), Ok(Permission::new(0x7ff0, Access::Both)));
    }

    #[test]
    fn parse_rejects_garbage() {
        for bad in [
            &b""[..],
            b"r",
            b"x1",
            b"R1",
            b"r-1",
            b"r+1",
            b"r 1",
            b"r1 ",
            b"r65536",
            b"r99999999999",
            b"rr1",
            b"1r",
            b"r1\0",
        ] {
            assert_eq!(Permission::parse(bad), Err(Error::InvalidPermission), "{bad:?}");
        }
    }

    #[test]
    fn format_roundtrip() {
        let p = Permission::new(42, Access::Write);
        assert_eq!(p.to_string(), "w42");
        let mut v = vec![];
        p.encode_into(&mut v);
        assert_eq!(v, b"w42");
        assert_eq!(Permission::parse(&v), Ok(p));
        for access in [Access::None, Access::Read, Access::Write, Access::Both] {
            for domid in [0, 1, 9, 10, 99, 100, 65535] {
                let p = Permission::new(domid, access);
                let mut v = vec![];
                p.encode_into(&mut v);
                assert_eq!(v, p.to_string().as_bytes());
                assert_eq!(Permission::parse(&v), Ok(p));
            }
        }
    }

    #[test]
    fn push_decimal_edges() {
        for (n, s) in [(0u32, "0"), (7, "7"), (10, "10"), (u32::MAX, "4294967295")] {
            let mut v = vec![b'x'];
            push_decimal(&mut v, n);
            assert_eq!(&v[1..], s.as_bytes());
            assert_eq!(v[0], b'x');
        }
    }
}
