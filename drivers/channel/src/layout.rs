//! The control page. Each side owns one and grants it read-only to its
//! peer, together with its transmit ring: every field below is written by
//! its owner only, so nothing the peer does can change our memory, and
//! everything we read from the peer's page is copied once and checked.
//!
//! ```text
//! offset  field            written by the owner as
//!   0     magic            "CHN1"
//!   4     version          LAYOUT_VERSION
//!   8     ring_pages       pages of the owner's transmit ring
//!  12     nonce            matches the xenstore offer
//!  16     state            Offered / Connected / Closed
//!  64     tx_prod          producer index of the owner's ring (bytes)
//!  68     tx_space_event   "notify me when your rx_cons passes this"
//! 128     rx_cons          how far the owner consumed the peer's ring
//! 132     rx_data_event    "notify me when your tx_prod passes this"
//! 256     grefs[]          grant refs of the owner's ring pages
//! ```
//!
//! Indices are free-running `u32` byte counts; producer and consumer
//! fields sit in separate cache lines.

use xen_proto::iface::{GrantRef, SharedPage};

/// `"CHN1"`, little endian.
pub const MAGIC: u32 = u32::from_le_bytes(*b"CHN1");
/// The layout this code speaks; peers speaking another one are refused.
pub const LAYOUT_VERSION: u32 = 1;
/// Largest transmit ring, in pages (256 KiB).
pub const MAX_RING_PAGES: u32 = 64;

pub const MAGIC_AT: usize = 0;
pub const VERSION_AT: usize = 4;
pub const RING_PAGES_AT: usize = 8;
pub const NONCE_AT: usize = 12;
pub const STATE_AT: usize = 16;
pub const TX_PROD: usize = 64;
pub const TX_SPACE_EVENT: usize = 68;
pub const RX_CONS: usize = 128;
pub const RX_DATA_EVENT: usize = 132;
pub const GREFS_AT: usize = 256;

/// What the owner says about its side of the channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Pages granted, peer not mapped yet.
    Offered,
    /// The owner mapped the peer's pages and reads its ring.
    Connected,
    /// The owner is tearing down: nothing more will be read or written.
    Closed,
}

impl State {
    pub fn raw(self) -> u32 {
        match self {
            State::Offered => 0,
            State::Connected => 1,
            State::Closed => 2,
        }
    }

    /// None for a value no version of this code writes.
    pub fn from_raw(raw: u32) -> Option<State> {
        match raw {
            0 => Some(State::Offered),
            1 => Some(State::Connected),
            2 => Some(State::Closed),
            _ => None,
        }
    }
}

/// Ring sizes are powers of two, so a free-running index modulo the size
/// is a plain mask, and at most [`MAX_RING_PAGES`].
pub fn valid_ring_pages(pages: u32) -> bool {
    pages.is_power_of_two() && pages <= MAX_RING_PAGES
}

/// Writes a fresh control page: header, our ring's grant refs, indices 0,
/// and `rx_data_event` 1 so the peer's first frame notifies us.
pub fn init<P: SharedPage>(page: &P, ring_pages: u32, nonce: u32, grefs: &[GrantRef]) {
    page.write_bytes(0, &[0u8; 512]);
    page.write_u32(MAGIC_AT, MAGIC);
    page.write_u32(VERSION_AT, LAYOUT_VERSION);
    page.write_u32(RING_PAGES_AT, ring_pages);
    page.write_u32(NONCE_AT, nonce);
    page.write_u32(STATE_AT, State::Offered.raw());
    page.write_u32(RX_DATA_EVENT, 1);
    page.write_u32(TX_SPACE_EVENT, 1);
    for (i, &g) in grefs.iter().enumerate() {
        page.write_u32(GREFS_AT + 4 * i, g);
    }
}

/// The peer's header, read once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerHeader {
    pub magic: u32,
    pub version: u32,
    pub ring_pages: u32,
    pub nonce: u32,
}

pub fn read_header<P: SharedPage>(page: &P) -> PeerHeader {
    PeerHeader {
        magic: page.read_u32(MAGIC_AT),
        version: page.read_u32(VERSION_AT),
        ring_pages: page.read_u32(RING_PAGES_AT),
        nonce: page.read_u32(NONCE_AT),
    }
}
