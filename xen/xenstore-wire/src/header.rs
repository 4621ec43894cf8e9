//! The 16-byte message header (`struct xsd_sockmsg`) and operation codes.
//!
//! The header is four `uint32_t` in the guest's native byte order. Every
//! architecture Xen supports for this protocol (x86, Arm) is
//! little-endian, so the fields are encoded little-endian explicitly
//! rather than relying on the build host's order.

use crate::error::Error;

/// Size of `struct xsd_sockmsg`.
pub const HEADER_LEN: usize = 16;

/// Largest payload a message may carry (`XENSTORE_PAYLOAD_MAX`).
///
/// The daemon treats a larger length as a protocol violation and may
/// tear the connection down, so it is enforced on both directions.
pub const XENSTORE_PAYLOAD_MAX: usize = 4096;

/// Byte ranges of the header fields, in the style of smoltcp's wire views.
pub mod field {
    use core::ops::Range;

    /// `type`: the [`MsgType`](super::MsgType) code.
    pub const TYPE: Range<usize> = 0..4;
    /// `req_id`: echoed by the daemon in the matching reply.
    pub const REQ_ID: Range<usize> = 4..8;
    /// `tx_id`: transaction id, 0 outside transactions.
    pub const TX_ID: Range<usize> = 8..12;
    /// `len`: number of payload bytes following the header.
    pub const LEN: Range<usize> = 12..16;
    /// Start of the payload.
    pub const PAYLOAD: usize = 16;
}

/// A xenstore operation (`enum xsd_sockmsg_type`).
///
/// Value 20 (`XS_RESTRICT`) was removed from the protocol and is treated
/// as unknown, as is `XS_INVALID` (0xffff).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum MsgType {
    /// `XS_CONTROL`, also known as `XS_DEBUG`.
    Control = 0,
    /// `XS_DIRECTORY`: list children of a node.
    Directory = 1,
    /// `XS_READ`: read a node's value.
    Read = 2,
    /// `XS_GET_PERMS`: read a node's permissions.
    GetPerms = 3,
    /// `XS_WATCH`: register a watch.
    Watch = 4,
    /// `XS_UNWATCH`: remove a watch.
    Unwatch = 5,
    /// `XS_TRANSACTION_START`.
    TransactionStart = 6,
    /// `XS_TRANSACTION_END`.
    TransactionEnd = 7,
    /// `XS_INTRODUCE` (dom0 only).
    Introduce = 8,
    /// `XS_RELEASE` (dom0 only).
    Release = 9,
    /// `XS_GET_DOMAIN_PATH`.
    GetDomainPath = 10,
    /// `XS_WRITE`.
    Write = 11,
    /// `XS_MKDIR`.
    Mkdir = 12,
    /// `XS_RM`.
    Rm = 13,
    /// `XS_SET_PERMS`.
    SetPerms = 14,
    /// `XS_WATCH_EVENT`: asynchronous watch notification from the daemon.
    WatchEvent = 15,
    /// `XS_ERROR`: error reply carrying an errno name.
    Error = 16,
    /// `XS_IS_DOMAIN_INTRODUCED`.
    IsDomainIntroduced = 17,
    /// `XS_RESUME`.
    Resume = 18,
    /// `XS_SET_TARGET`.
    SetTarget = 19,
    /// `XS_RESET_WATCHES` (20, `XS_RESTRICT`, was removed).
    ResetWatches = 21,
    /// `XS_DIRECTORY_PART`: paged directory listing.
    DirectoryPart = 22,
}

impl MsgType {
    /// `XS_DEBUG` is an alias of `XS_CONTROL`.
    pub const DEBUG: MsgType = MsgType::Control;

    /// The numeric code sent on the wire.
    pub const fn code(self) -> u32 {
        self as u32
    }
}

impl TryFrom<u32> for MsgType {
    type Error = Error;

    /// Checked conversion; unknown codes become [`Error::UnknownType`].
    fn try_from(v: u32) -> Result<Self, Error> {
        Ok(match v {
            0 => MsgType::Control,
            1 => MsgType::Directory,
            2 => MsgType::Read,
            3 => MsgType::GetPerms,
            4 => MsgType::Watch,
            5 => MsgType::Unwatch,
            6 => MsgType::TransactionStart,
            7 => MsgType::TransactionEnd,
            8 => MsgType::Introduce,
            9 => MsgType::Release,
            10 => MsgType::GetDomainPath,
            11 => MsgType::Write,
            12 => MsgType::Mkdir,
            13 => MsgType::Rm,
            14 => MsgType::SetPerms,
            15 => MsgType::WatchEvent,
            16 => MsgType::Error,
            17 => MsgType::IsDomainIntroduced,
            18 => MsgType::Resume,
            19 => MsgType::SetTarget,
            21 => MsgType::ResetWatches,
            22 => MsgType::DirectoryPart,
            other => return Err(Error::UnknownType(other)),
        })
    }
}

impl From<MsgType> for u32 {
    fn from(t: MsgType) -> u32 {
        t.code()
    }
}

/// Reads a little-endian `u32` from `buf[range]`, or `None` if out of
/// bounds. Keeps every accessor panic-free even on hostile input.
fn read_u32(buf: &[u8], range: core::ops::Range<usize>) -> Option<u32> {
    let bytes: [u8; 4] = buf.get(range)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

/// A decoded, validated message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Operation.
    pub msg_type: MsgType,
    /// Request id, echoed by the daemon.
    pub req_id: u32,
    /// Transaction id (0 outside transactions).
    pub tx_id: u32,
    /// Payload length in bytes; at most [`XENSTORE_PAYLOAD_MAX`].
    pub len: u32,
}

impl Header {
    /// Parses and validates the first [`HEADER_LEN`] bytes of `buf`.
    ///
    /// Trailing bytes are ignored so this works on a header prefix as well
    /// as on a whole message. Fails on a short buffer, an unknown type or
    /// a length above [`XENSTORE_PAYLOAD_MAX`].
    pub fn parse(buf: &[u8]) -> Result<Header, Error> {
        let (Some(ty), Some(req_id), Some(tx_id), Some(len)) =
            (read_u32(buf, field::TYPE), read_u32(buf, field::REQ_ID), read_u32(buf, field::TX_ID), read_u32(buf, field::LEN))
        else {
            return Err(Error::Truncated);
        };
        let msg_type = MsgType::try_from(ty)?;
        if len as usize > XENSTORE_PAYLOAD_MAX {
            return Err(Error::PayloadTooLarge(len as usize));
        }
        Ok(Header { msg_type, req_id, tx_id, len })
    }

    /// Payload length as a `usize`.
    pub fn payload_len(&self) -> usize {
        self.len as usize
    }

    /// Encodes the header into its 16 wire bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[field::TYPE].copy_from_slice(&self.msg_type.code().to_le_bytes());
        out[field::REQ_ID].copy_from_slice(&self.req_id.to_le_bytes());
        out[field::TX_ID].copy_from_slice(&self.tx_id.to_le_bytes());
        out[field::LEN].copy_from_slice(&self.len.to_le_bytes());
        out
    }

    /// Writes the header into the start of `buf`.
    ///
    /// Fails with [`Error::Truncated`] if `buf` is shorter than
    /// [`HEADER_LEN`], or [`Error::PayloadTooLarge`] if `len` is out of
    /// range (so an invalid header is never put on the ring).
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        if self.payload_len() > XENSTORE_PAYLOAD_MAX {
            return Err(Error::PayloadTooLarge(self.payload_len()));
        }
        let dst = buf.get_mut(..HEADER_LEN).ok_or(Error::Truncated)?;
        dst.copy_from_slice(&self.to_bytes());
        Ok(())
    }
}

/// A read-only view of a complete message (header plus payload) in a
/// byte buffer, in the style of smoltcp's `Packet` views.
///
/// A `Frame` can only be obtained through [`Frame::new_checked`], so its
/// accessors never index out of bounds.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps `buffer` after [`check_len`](Self::check_len) succeeds.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let frame = Frame { buffer };
        frame.check_len()?;
        Ok(frame)
    }

    /// Ensures the buffer holds a header whose `len` is at most
    /// [`XENSTORE_PAYLOAD_MAX`] and the whole payload it declares.
    ///
    /// The type field is not checked here, so unknown operations can still
    /// be inspected; use [`Frame::header`] for full validation.
    pub fn check_len(&self) -> Result<(), Error> {
        let buf = self.buffer.as_ref();
        let len = read_u32(buf, field::LEN).ok_or(Error::Truncated)? as usize;
        if len > XENSTORE_PAYLOAD_MAX {
            return Err(Error::PayloadTooLarge(len));
        }
        if buf.len() < HEADER_LEN + len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Raw `type` field.
    pub fn msg_type_raw(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::TYPE).unwrap_or(u32::MAX)
    }

    /// `type` field, checked.
    pub fn msg_type(&self) -> Result<MsgType, Error> {
        MsgType::try_from(self.msg_type_raw())
    }

    /// `req_id` field.
    pub fn req_id(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::REQ_ID).unwrap_or(0)
    }

    /// `tx_id` field.
    pub fn tx_id(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::TX_ID).unwrap_or(0)
    }

    /// `len` field.
    pub fn payload_len(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::LEN).unwrap_or(0)
    }

    /// The payload (exactly `len` bytes; trailing buffer bytes excluded).
    pub fn payload(&self) -> &[u8] {
        let end = field::PAYLOAD + self.payload_len() as usize;
        self.buffer.as_ref().get(field::PAYLOAD..end).unwrap_or_default()
    }

    /// Total bytes the message occupies (header plus payload).
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len() as usize
    }

    /// Fully validated header.
    pub fn header(&self) -> Result<Header, Error> {
        Header::parse(self.buffer.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_codes_match_xs_wire_h() {
        // Values from enum xsd_sockmsg_type, counted by hand.
        let expected: [(u32, MsgType); 22] = [
            (0, MsgType::Control),
            (1, MsgType::Directory),
            (2, MsgType::Read),
            (3, MsgType::GetPerms),
            (4, MsgType::Watch),
            (5, MsgType::Unwatch),
            (6, MsgType::TransactionStart),
            (7, MsgType::TransactionEnd),
            (8, MsgType::Introduce),
            (9, MsgType::Release),
            (10, MsgType::GetDomainPath),
            (11, MsgType::Write),
            (12, MsgType::Mkdir),
            (13, MsgType::Rm),
            (14, MsgType::SetPerms),
            (15, MsgType::WatchEvent),
            (16, MsgType::Error),
            (17, MsgType::IsDomainIntroduced),
            (18, MsgType::Resume),
            (19, MsgType::SetTarget),
            (21, MsgType::ResetWatches),
            (22, MsgType::DirectoryPart),
        ];
        for (code, ty) in expected {
            assert_eq!(MsgType::try_from(code), Ok(ty));
            assert_eq!(ty.code(), code);
            assert_eq!(u32::from(ty), code);
        }
        assert_eq!(MsgType::DEBUG, MsgType::Control);
    }

    #[test]
    fn unknown_types_rejected() {
        for code in [20, 23, 0xffff, u32::MAX] {
            assert_eq!(MsgType::try_from(code), Err(Error::UnknownType(code)));
        }
    }

    #[test]
    fn header_golden_roundtrip() {
        let bytes = [
            2, 0, 0, 0, // XS_READ
            0x78, 0x56, 0x34, 0x12, // req_id 0x12345678
            5, 0, 0, 0, // tx_id 5
            0, 0x10, 0, 0, // len 4096
        ];
        let h = Header::parse(&bytes).unwrap();
        assert_eq!(h, Header { msg_type: MsgType::Read, req_id: 0x1234_5678, tx_id: 5, len: 4096 });
        assert_eq!(h.to_bytes(), bytes);
        let mut out = [0xaau8; 20];
        h.emit(&mut out).unwrap();
        assert_eq!(&out[..16], &bytes);
        assert_eq!(&out[16..], &[0xaa; 4]);
    }

    #[test]
    fn header_errors() {
        let mut bytes = [0u8; 16];
        assert_eq!(Header::parse(&bytes[..15]), Err(Error::Truncated));
        assert_eq!(Header::parse(&[]), Err(Error::Truncated));
        bytes[12..16].copy_from_slice(&4097u32.to_le_bytes());
        assert_eq!(Header::parse(&bytes), Err(Error::PayloadTooLarge(4097)));
        bytes[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Header::parse(&bytes), Err(Error::PayloadTooLarge(u32::MAX as usize)));
        bytes[12..16].copy_from_slice(&0u32.to_le_bytes());
        bytes[0] = 20;
        assert_eq!(Header::parse(&bytes), Err(Error::UnknownType(20)));

        let h = Header { msg_type: MsgType::Write, req_id: 0, tx_id: 0, len: 4097 };
        assert_eq!(h.emit(&mut [0u8; 32]), Err(Error::PayloadTooLarge(4097)));
        let ok = Header { len: 1, ..h };
        assert_eq!(ok.emit(&mut [0u8; 15]), Err(Error::Truncated));
    }

    #[test]
    fn frame_view() {
        let mut buf = [0u8; 24];
        buf[0] = 16; // XS_ERROR
        buf[4] = 9;
        buf[12] = 7;
        buf[16..23].copy_from_slice(b"EINVAL\0");
        buf[23] = 0xff; // trailing garbage beyond len
        let f = Frame::new_checked(&buf[..]).unwrap();
        assert_eq!(f.msg_type(), Ok(MsgType::Error));
        assert_eq!(f.req_id(), 9);
        assert_eq!(f.tx_id(), 0);
        assert_eq!(f.payload_len(), 7);
        assert_eq!(f.payload(), b"EINVAL\0");
        assert_eq!(f.total_len(), 23);
        assert_eq!(f.header().unwrap().msg_type, MsgType::Error);

        assert_eq!(Frame::new_checked(&buf[..22]).err(), Some(Error::Truncated));
        assert_eq!(Frame::new_checked(&buf[..10]).err(), Some(Error::Truncated));
        buf[12..16].copy_from_slice(&5000u32.to_le_bytes());
        assert_eq!(Frame::new_checked(&buf[..]).err(), Some(Error::PayloadTooLarge(5000)));
        // Unknown type passes the length check but not header().
        buf[12..16].copy_from_slice(&0u32.to_le_bytes());
        buf[0] = 99;
        let f = Frame::new_checked(&buf[..]).unwrap();
        assert_eq!(f.msg_type_raw(), 99);
        assert_eq!(f.header(), Err(Error::UnknownType(99)));
        assert_eq!(f.payload(), b"");
    }
}
