//! Checked views of netif requests and responses (`xen/io/netif.h`), in
//! the style of `smoltcp::wire`: a view wraps a byte buffer, `new_checked`
//! verifies its length, field accessors are little-endian.
//!
//! Requests are what we write; responses are what an untrusted backend
//! wrote, and [`check_rx`] / [`TxStatus`] decide what they may mean.

use core::fmt;

use xen_proto::iface::{GrantRef, PAGE_SIZE};

use crate::ring::{RX_ENTRY_SIZE, TX_ENTRY_SIZE};

/// `NETTXF_csum_blank`.
pub const NETTXF_CSUM_BLANK: u16 = 1 << 0;
/// `NETTXF_data_validated`.
pub const NETTXF_DATA_VALIDATED: u16 = 1 << 1;
/// `NETTXF_more_data`.
pub const NETTXF_MORE_DATA: u16 = 1 << 2;
/// `NETTXF_extra_info`.
pub const NETTXF_EXTRA_INFO: u16 = 1 << 3;

/// `NETRXF_data_validated`.
pub const NETRXF_DATA_VALIDATED: u16 = 1 << 0;
/// `NETRXF_csum_blank`.
pub const NETRXF_CSUM_BLANK: u16 = 1 << 1;
/// `NETRXF_more_data`.
pub const NETRXF_MORE_DATA: u16 = 1 << 2;
/// `NETRXF_extra_info`.
pub const NETRXF_EXTRA_INFO: u16 = 1 << 3;
/// `NETRXF_gso_prefix`.
pub const NETRXF_GSO_PREFIX: u16 = 1 << 4;

/// `XEN_NETIF_EXTRA_FLAG_MORE` (byte 1 of an extra-info slot).
pub const XEN_NETIF_EXTRA_FLAG_MORE: u8 = 1 << 0;
/// `XEN_NETIF_EXTRA_TYPE_GSO`.
pub const XEN_NETIF_EXTRA_TYPE_GSO: u8 = 1;
/// `XEN_NETIF_GSO_TYPE_TCPV4`.
pub const XEN_NETIF_GSO_TYPE_TCPV4: u8 = 1;

/// `NETIF_RSP_DROPPED`.
pub const NETIF_RSP_DROPPED: i16 = -2;
/// `NETIF_RSP_ERROR`.
pub const NETIF_RSP_ERROR: i16 = -1;
/// `NETIF_RSP_OKAY`.
pub const NETIF_RSP_OKAY: i16 = 0;
/// `NETIF_RSP_NULL`.
pub const NETIF_RSP_NULL: i16 = 1;

/// Largest Ethernet frame (no FCS) at MTU 1500.
pub const MAX_FRAME: usize = 1514;
/// Largest packet of several slots: a request's size field is 16 bits
/// (`XEN_NETIF_MAX_TX_SIZE`).
pub const MAX_PACKET: usize = 0xffff;
/// Most data slots in one packet, either way: what netif.h guarantees
/// (`XEN_NETIF_NR_SLOTS_MIN`); 64 KiB needs 17.
pub const MAX_SLOTS: usize = 18;
/// Most extra-info slots we accept after one received packet's first
/// slot (Linux netback sends at most GSO, hash and XDP).
pub const MAX_EXTRAS: usize = 4;
/// Smallest frame we hand up: an Ethernet header.
pub const MIN_FRAME: usize = 14;

/// The buffer is shorter than the structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncated;

impl fmt::Display for Truncated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("buffer too short for a ring entry")
    }
}

fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

macro_rules! view {
    ($(#[$m:meta])* $name:ident, $len:expr) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// Size of the structure on the ring.
            pub const LEN: usize = $len;

            /// Wraps `buffer` without checking its length (accessors
            /// panic if it is short).
            pub const fn new_unchecked(buffer: T) -> Self {
                $name { buffer }
            }

            /// Wraps `buffer`, failing if it is shorter than [`Self::LEN`].
            pub fn new_checked(buffer: T) -> Result<Self, Truncated> {
                let v = Self::new_unchecked(buffer);
                v.check_len()?;
                Ok(v)
            }

            /// Whether the buffer holds the whole structure.
            pub fn check_len(&self) -> Result<(), Truncated> {
                if self.buffer.as_ref().len() < Self::LEN {
                    Err(Truncated)
                } else {
                    Ok(())
                }
            }

            /// The underlying buffer.
            pub fn into_inner(self) -> T {
                self.buffer
            }
        }
    };
}

view!(
    /// `struct netif_tx_request`: gref@0 u32, offset@4, flags@6, id@8,
    /// size@10 (u16 each); the slot is 12 bytes.
    TxRequest,
    TX_ENTRY_SIZE
);
view!(
    /// `struct netif_tx_response`: id@0 u16, status@2 i16.
    TxResponse,
    4
);
view!(
    /// `struct netif_rx_request`: id@0 u16, pad@2, gref@4 u32.
    RxRequest,
    RX_ENTRY_SIZE
);
view!(
    /// `struct netif_extra_info`, overlaying a request or response slot:
    /// type@0, flags@1 (u8); for GSO: size@2 (u16, the MSS), type@4,
    /// pad@5 (u8), features@6 (u16).
    ExtraInfo,
    8
);
view!(
    /// `struct netif_rx_response`: id@0, offset@2, flags@4 (u16),
    /// status@6 (i16: negative `NETIF_RSP_*`, else the size).
    RxResponse,
    RX_ENTRY_SIZE
);

impl<T: AsRef<[u8]>> TxRequest<T> {
    /// Grant of the buffer page.
    pub fn gref(&self) -> GrantRef {
        get_u32(self.buffer.as_ref(), 0)
    }
    /// Offset of the data in the page.
    pub fn offset(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 4)
    }
    /// `NETTXF_*`.
    pub fn flags(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 6)
    }
    /// Request id, echoed in the response.
    pub fn id(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 8)
    }
    /// Packet size.
    pub fn size(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 10)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TxRequest<T> {
    /// Sets every field.
    pub fn fill(&mut self, gref: GrantRef, offset: u16, flags: u16, id: u16, size: u16) {
        let b = self.buffer.as_mut();
        put_u32(b, 0, gref);
        put_u16(b, 4, offset);
        put_u16(b, 6, flags);
        put_u16(b, 8, id);
        put_u16(b, 10, size);
    }
}

impl<T: AsRef<[u8]>> TxResponse<T> {
    /// Id of the request answered.
    pub fn id(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 0)
    }
    /// `NETIF_RSP_*`.
    pub fn status(&self) -> i16 {
        get_u16(self.buffer.as_ref(), 2) as i16
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TxResponse<T> {
    /// Sets every field (backend side, for tests and simulators).
    pub fn fill(&mut self, id: u16, status: i16) {
        let b = self.buffer.as_mut();
        put_u16(b, 0, id);
        put_u16(b, 2, status as u16);
    }
}

impl<T: AsRef<[u8]>> RxRequest<T> {
    /// Request id, echoed in the response.
    pub fn id(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 0)
    }
    /// Grant of the page to receive into.
    pub fn gref(&self) -> GrantRef {
        get_u32(self.buffer.as_ref(), 4)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> RxRequest<T> {
    /// Sets every field (pad zeroed).
    pub fn fill(&mut self, id: u16, gref: GrantRef) {
        let b = self.buffer.as_mut();
        put_u16(b, 0, id);
        put_u16(b, 2, 0);
        put_u32(b, 4, gref);
    }
}

impl<T: AsRef<[u8]>> RxResponse<T> {
    /// Id of the request answered.
    pub fn id(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 0)
    }
    /// Offset of the data in the page.
    pub fn offset(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 2)
    }
    /// `NETRXF_*`.
    pub fn flags(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 4)
    }
    /// Negative: `NETIF_RSP_*`; otherwise the size received.
    pub fn status(&self) -> i16 {
        get_u16(self.buffer.as_ref(), 6) as i16
    }
    /// Byte 1 of the slot when it is an extra-info slot
    /// (`XEN_NETIF_EXTRA_FLAG_*`).
    pub fn extra_flags(&self) -> u8 {
        self.buffer.as_ref()[1]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> RxResponse<T> {
    /// Sets every field (backend side, for tests and simulators).
    pub fn fill(&mut self, id: u16, offset: u16, flags: u16, status: i16) {
        let b = self.buffer.as_mut();
        put_u16(b, 0, id);
        put_u16(b, 2, offset);
        put_u16(b, 4, flags);
        put_u16(b, 6, status as u16);
    }
}

impl<T: AsRef<[u8]>> ExtraInfo<T> {
    /// `XEN_NETIF_EXTRA_TYPE_*`.
    pub fn kind(&self) -> u8 {
        self.buffer.as_ref()[0]
    }
    /// `XEN_NETIF_EXTRA_FLAG_*`.
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[1]
    }
    /// GSO: the segment size (MSS).
    pub fn gso_size(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 2)
    }
    /// GSO: `XEN_NETIF_GSO_TYPE_*`.
    pub fn gso_type(&self) -> u8 {
        self.buffer.as_ref()[4]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ExtraInfo<T> {
    /// Writes a GSO extra: TCPv4 segments of `mss` bytes, the last extra.
    pub fn fill_gso_tcpv4(&mut self, mss: u16) {
        let b = self.buffer.as_mut();
        b[0] = XEN_NETIF_EXTRA_TYPE_GSO;
        b[1] = 0;
        put_u16(b, 2, mss);
        b[4] = XEN_NETIF_GSO_TYPE_TCPV4;
        b[5] = 0;
        put_u16(b, 6, 0);
    }
}

/// What a tx response's status says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// `NETIF_RSP_OKAY`.
    Okay,
    /// `NETIF_RSP_ERROR`.
    Error,
    /// `NETIF_RSP_DROPPED`.
    Dropped,
    /// `NETIF_RSP_NULL` (only valid for extra-info slots, which we never
    /// send) or a value netif.h does not define.
    Invalid(i16),
}

impl TxStatus {
    /// Classifies a raw status.
    pub fn from_raw(s: i16) -> TxStatus {
        match s {
            NETIF_RSP_OKAY => TxStatus::Okay,
            NETIF_RSP_ERROR => TxStatus::Error,
            NETIF_RSP_DROPPED => TxStatus::Dropped,
            other => TxStatus::Invalid(other),
        }
    }
}

/// Why a received frame is not handed up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxReject {
    /// Negative status (`NETIF_RSP_ERROR`, `NETIF_RSP_DROPPED`, ...).
    Status(i16),
    /// `offset + size` past the page.
    OutsidePage,
    /// Larger than [`MAX_FRAME`] (but inside the page).
    Oversize,
    /// Shorter than [`MIN_FRAME`] (includes size 0).
    Runt,
    /// Flags for features we did not negotiate: `more_data` (no
    /// feature-sg), `extra_info` (no GSO), `csum_blank` (we wrote
    /// feature-no-csum-offload), `gso_prefix`.
    UnsupportedFlags(u16),
}

/// Checks an rx response's geometry and flags: on success the frame is
/// at `offset .. offset + len` of the page, entirely inside it.
pub fn check_rx(offset: u16, flags: u16, status: i16) -> Result<(usize, usize), RxReject> {
    if status < 0 {
        return Err(RxReject::Status(status));
    }
    let (off, len) = (usize::from(offset), status as usize);
    // Both are < 2^16, so the sum cannot overflow.
    if off + len > PAGE_SIZE {
        return Err(RxReject::OutsidePage);
    }
    let bad = flags & (NETRXF_MORE_DATA | NETRXF_EXTRA_INFO | NETRXF_CSUM_BLANK | NETRXF_GSO_PREFIX);
    if bad != 0 {
        return Err(RxReject::UnsupportedFlags(bad));
    }
    if len > MAX_FRAME {
        return Err(RxReject::Oversize);
    }
    if len < MIN_FRAME {
        return Err(RxReject::Runt);
    }
    Ok((off, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_request_layout() {
        // Offsets from gcc on netif.h: gref 0, offset 4, flags 6, id 8, size 10.
        let mut b = [0u8; 12];
        TxRequest::new_checked(&mut b[..]).unwrap().fill(0x0403_0201, 0x0605, 0x0807, 0x0a09, 0x0c0b);
        assert_eq!(b, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let v = TxRequest::new_checked(&b[..]).unwrap();
        assert_eq!((v.gref(), v.offset(), v.flags(), v.id(), v.size()), (0x0403_0201, 0x0605, 0x0807, 0x0a09, 0x0c0b));
        assert_eq!(TxRequest::new_checked(&b[..11]), Err(Truncated));
    }

    #[test]
    fn tx_response_layout() {
        let mut b = [0u8; 12];
        TxResponse::new_checked(&mut b[..]).unwrap().fill(0x0201, -2);
        assert_eq!(&b[..4], &[1, 2, 0xfe, 0xff]);
        let v = TxResponse::new_checked(&b[..]).unwrap();
        assert_eq!((v.id(), v.status()), (0x0201, NETIF_RSP_DROPPED));
        assert!(TxResponse::new_checked(&b[..3]).is_err());
    }

    #[test]
    fn rx_layouts() {
        // rx request: id 0, pad 2, gref 4. rx response: id 0, offset 2,
        // flags 4, status 6.
        let mut b = [0xffu8; 8];
        RxRequest::new_checked(&mut b[..]).unwrap().fill(0x0201, 0x0807_0605);
        assert_eq!(b, [1, 2, 0, 0, 5, 6, 7, 8]);
        let r = RxRequest::new_checked(&b[..]).unwrap();
        assert_eq!((r.id(), r.gref()), (0x0201, 0x0807_0605));
        RxResponse::new_checked(&mut b[..]).unwrap().fill(0x0201, 0x0403, 0x0605, 1514);
        let v = RxResponse::new_checked(&b[..]).unwrap();
        assert_eq!((v.id(), v.offset(), v.flags(), v.status()), (0x0201, 0x0403, 0x0605, 1514));
        assert_eq!(v.extra_flags(), 0x02);
        assert!(RxResponse::new_checked(&b[..7]).is_err());
    }

    #[test]
    fn flag_values_match_netif_h() {
        assert_eq!((NETTXF_CSUM_BLANK, NETTXF_DATA_VALIDATED, NETTXF_MORE_DATA, NETTXF_EXTRA_INFO), (1, 2, 4, 8));
        assert_eq!(
            (NETRXF_DATA_VALIDATED, NETRXF_CSUM_BLANK, NETRXF_MORE_DATA, NETRXF_EXTRA_INFO, NETRXF_GSO_PREFIX),
            (1, 2, 4, 8, 16)
        );
        assert_eq!(TxStatus::from_raw(0), TxStatus::Okay);
        assert_eq!(TxStatus::from_raw(-1), TxStatus::Error);
        assert_eq!(TxStatus::from_raw(-2), TxStatus::Dropped);
        assert_eq!(TxStatus::from_raw(1), TxStatus::Invalid(1));
        assert_eq!(TxStatus::from_raw(-77), TxStatus::Invalid(-77));
    }

    #[test]
    fn rx_checks() {
        assert_eq!(check_rx(0, 0, 60), Ok((0, 60)));
        assert_eq!(check_rx(0, NETRXF_DATA_VALIDATED, 1514), Ok((0, 1514)));
        assert_eq!(check_rx(4096 - 1514, 0, 1514), Ok((2582, 1514)));
        assert_eq!(check_rx(4096 - 1513, 0, 1514), Err(RxReject::OutsidePage));
        assert_eq!(check_rx(u16::MAX, 0, 14), Err(RxReject::OutsidePage));
        assert_eq!(check_rx(0, 0, i16::MAX), Err(RxReject::OutsidePage));
        assert_eq!(check_rx(0, 0, 4096), Err(RxReject::Oversize));
        assert_eq!(check_rx(0, 0, 1515), Err(RxReject::Oversize));
        assert_eq!(check_rx(0, 0, 0), Err(RxReject::Runt));
        assert_eq!(check_rx(0, 0, 13), Err(RxReject::Runt));
        assert_eq!(check_rx(0, 0, -1), Err(RxReject::Status(-1)));
        assert_eq!(check_rx(0, 0, i16::MIN), Err(RxReject::Status(i16::MIN)));
        for f in [NETRXF_MORE_DATA, NETRXF_EXTRA_INFO, NETRXF_CSUM_BLANK, NETRXF_GSO_PREFIX] {
            assert_eq!(check_rx(0, f, 100), Err(RxReject::UnsupportedFlags(f)));
        }
    }
}
