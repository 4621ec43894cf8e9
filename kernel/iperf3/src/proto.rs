//! Wire constants of iperf3 3.12: states, error codes, the cookie, limits.
//!
//! Values come from esnet/iperf `src/iperf.h` and `src/iperf_api.h` (tag 3.12);
//! see `docs/iperf3.md` for the protocol description this crate follows.

/// Default TCP port of the control connection and of every data stream.
pub const DEFAULT_PORT: u16 = 5201;
/// Cookie: 36 characters from the lower-case base32 alphabet plus a NUL.
pub const COOKIE_LEN: usize = 37;
/// The alphabet iperf3 draws cookie characters from.
pub const COOKIE_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// Default TCP block size (`DEFAULT_TCP_BLKSIZE`).
pub const DEFAULT_TCP_LEN: u32 = 128 * 1024;
/// UDP block size used when the parameters carry none (iperf3 falls back to 1460).
pub const DEFAULT_UDP_LEN: u32 = 1460;
/// Largest TCP block size iperf3 accepts (`MAX_BLOCKSIZE`).
pub const MAX_TCP_LEN: u32 = 1024 * 1024;
/// Smallest UDP datagram iperf3 accepts (`MIN_UDP_BLOCKSIZE`).
pub const MIN_UDP_LEN: u32 = 16;
/// Largest UDP datagram iperf3 accepts (`MAX_UDP_BLOCKSIZE`).
pub const MAX_UDP_LEN: u32 = 65507;
/// iperf3's own cap on parallel streams (`MAX_STREAMS`).
pub const MAX_STREAMS: u16 = 128;
/// The UDP default rate, bit/s per stream (`UDP_RATE`).
pub const DEFAULT_UDP_RATE: u64 = 1024 * 1024;
/// Wire bytes of the UDP "connect" datagram a client sends (ASCII "9876").
pub const UDP_CONNECT_MSG: [u8; 4] = *b"9876";
/// Wire bytes of the server's UDP connect reply (ASCII "6789").
pub const UDP_CONNECT_REPLY: [u8; 4] = *b"6789";
/// Wire bytes of the legacy reply 987654321 some servers send.
pub const UDP_LEGACY_CONNECT_REPLY: [u8; 4] = [0xb1, 0x68, 0xde, 0x3a];
/// Cap on the parameters JSON (iperf3 >= 3.18 uses the same, `MAX_PARAMS_JSON_STRING`).
pub const DEFAULT_MAX_PARAMS_JSON: u32 = 8 * 1024;
/// Cap on a results JSON.
pub const DEFAULT_MAX_RESULTS_JSON: u32 = 64 * 1024;

/// One control-connection state byte (`iperf_api.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i8)]
pub enum State {
    /// Streams connected; the client starts its timers.
    TestStart = 1,
    /// Start transferring.
    TestRunning = 2,
    /// Client: its end condition is met.
    TestEnd = 4,
    /// Server: send your parameters.
    ParamExchange = 9,
    /// Server: open the data streams.
    CreateStreams = 10,
    /// Server was interrupted.
    ServerTerminate = 11,
    /// Client was interrupted.
    ClientTerminate = 12,
    /// Server: send your results, then read mine.
    ExchangeResults = 13,
    /// Server: results done, print them.
    DisplayResults = 14,
    /// Client: last byte of a good test.
    IperfDone = 16,
    /// Server busy, or a data connection with a foreign cookie.
    AccessDenied = -1,
    /// Followed by int32be i_errno and int32be errno.
    ServerError = -2,
}

impl State {
    /// The byte on the wire.
    pub const fn byte(self) -> u8 {
        self as i8 as u8
    }

    /// Decodes a wire byte; `None` for values iperf3 never sends.
    pub const fn from_byte(b: u8) -> Option<Self> {
        Some(match b as i8 {
            1 => State::TestStart,
            2 => State::TestRunning,
            4 => State::TestEnd,
            9 => State::ParamExchange,
            10 => State::CreateStreams,
            11 => State::ServerTerminate,
            12 => State::ClientTerminate,
            13 => State::ExchangeResults,
            14 => State::DisplayResults,
            16 => State::IperfDone,
            -1 => State::AccessDenied,
            -2 => State::ServerError,
            _ => return None,
        })
    }
}

/// iperf3 `i_errno` values this crate sends or interprets (`iperf_api.h`).
pub mod ierr {
    /// "number of parallel streams too large"
    pub const IENUMSTREAMS: i32 = 6;
    /// "block size too large"
    pub const IEBLOCKSIZE: i32 = 7;
    /// "bogus value for --omit"
    pub const IEOMIT: i32 = 12;
    /// "an option you are trying to set is not implemented yet"
    pub const IEUNIMP: i32 = 13;
    /// "no SCTP support available"
    pub const IENOSCTP: i32 = 18;
    /// "block size invalid"
    pub const IEUDPBLOCKSIZE: i32 = 20;
    /// "cannot be both reverse and bidirectional"
    pub const IEREVERSEBIDIR: i32 = 25;
    /// "total required bandwidth is larger than server limit"
    pub const IETOTALRATE: i32 = 27;
    /// "unable to receive cookie at server"
    pub const IERECVCOOKIE: i32 = 106;
    /// "received an unknown control message"
    pub const IEMESSAGE: i32 = 110;
    /// "unable to receive parameters from client"
    pub const IERECVPARAMS: i32 = 114;
    /// "unable to receive results"
    pub const IERECVRESULTS: i32 = 117;
    /// "the server is busy running a test. try again later"
    pub const IEACCESSDENIED: i32 = 121;
    /// "protocol does not exist"
    pub const IEPROTOCOL: i32 = 131;
    /// "unable to create a new stream"
    pub const IECREATESTREAM: i32 = 200;
    /// "unable to start stream listener"
    pub const IESTREAMLISTEN: i32 = 202;
}

/// Linux errno values sent as the second int after SERVER_ERROR
/// (the client prints them with its own `strerror`).
pub mod errno {
    /// No errno.
    pub const NONE: i32 = 0;
    /// "Invalid argument"
    pub const EINVAL: i32 = 22;
    /// "Message too long"
    pub const EMSGSIZE: i32 = 90;
    /// "Protocol not supported": what a Linux iperf3 3.12 without SCTP sends.
    pub const EPROTONOSUPPORT: i32 = 93;
    /// "Connection timed out"
    pub const ETIMEDOUT: i32 = 110;
}

/// The 37-byte cookie naming one test (control and data connections).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Cookie(pub [u8; COOKIE_LEN]);

impl Cookie {
    /// Checks a received cookie: 36 non-NUL printable ASCII bytes and a
    /// final NUL. iperf3 itself draws from base32 but compares with `strcmp`,
    /// so any printable characters are accepted; a NUL before byte 36 or a
    /// missing terminator ("wrong length") is refused.
    pub fn parse(bytes: &[u8; COOKIE_LEN]) -> Option<Self> {
        let (body, nul) = bytes.split_at(COOKIE_LEN - 1);
        if nul[0] != 0 || !body.iter().all(|b| (0x21..=0x7e).contains(b)) {
            return None;
        }
        Some(Cookie(*bytes))
    }

    /// Builds a cookie the way iperf3 does from 36 random bytes.
    pub fn from_random(random: &[u8; COOKIE_LEN - 1]) -> Self {
        let mut c = [0u8; COOKIE_LEN];
        for (dst, r) in c.iter_mut().zip(random.iter()) {
            *dst = COOKIE_ALPHABET[usize::from(*r & 31)];
        }
        Cookie(c)
    }

    /// The 36 characters without the NUL.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0[..COOKIE_LEN - 1]).unwrap_or("")
    }
}

impl core::fmt::Debug for Cookie {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Cookie({:?})", self.as_str())
    }
}

/// The 9 bytes of a SERVER_ERROR message.
pub fn server_error_bytes(i_errno: i32, errno: i32) -> [u8; 9] {
    let mut b = [0u8; 9];
    b[0] = State::ServerError.byte();
    b[1..5].copy_from_slice(&i_errno.to_be_bytes());
    b[5..9].copy_from_slice(&errno.to_be_bytes());
    b
}
